"""How a model trains: models and their registry, data, transfer sets, losses, distillers and the engine.

  registry       create_model by name (a leaf; this package imports the implementations that fill it)
  models         the study's MNIST MLPs and 5-layer CIFAR CNN
  cifar_models   ResNet-18, WRN-28-10, PreResNet-110, DenseNet-BC-100, ResNeXt-29
  data           datasets as resident uint8 tensors, batched augmentation, stratified subsets
  transfer_sets  which training images a run learns from (omit a class, partial data) and the bias fix
  losses         Hinton et al.'s loss as the study wrote it
  distill/       one registered class per distillation method
  engine         the one training loop (teachers and students alike) and evaluation
  checkpoint     per-epoch checkpoints of a training run, and resuming from them bit-identically

Every file of this package is part of the code version that keys the teacher cache (zoo.runs.code_version).
"""
from zoo.training import cifar_models, models  # noqa: F401  (their decorators fill the model registry)
