"""Distillers: how a student learns from its teacher, one registered class per method.

  base       Distiller (its features, its own trainable parts, its loss) and FeatureTaps, the forward
             hooks that take intermediate features from any model without changing it
  registry   register_distiller / create_distiller / list_distillers, by the name a recipe's Distill names
  hinton     Hinton et al. (2015): soft targets at temperature T, the study's loss
  attention  Zagoruyko & Komodakis (2017): activation-based attention transfer, plus the Hinton terms
  fitnets    Romero et al. (2015): hint training through a regressor (stage 1), then Hinton KD (stage 2)
  datafree   Lopes et al. (2017): a transfer set reconstructed from the teacher's activation statistics

Adding a method is one class here (or in a plugin) with @register_distiller, and one row naming it.
"""
from zoo.training.distill import attention, datafree, fitnets, hinton  # noqa: F401,E402  (they register)
