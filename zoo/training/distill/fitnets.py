"""FitNets (Romero et al. 2015, arXiv:1412.6550): hints first, then knowledge distillation: two stages.

Stage 1 (`hint_epochs`) trains the student up to its guided layer so that a regressor maps the guided
layer's output onto the teacher's hint layer: loss 1/2 * mean squared difference (the teacher's map is
average-pooled to the student's resolution where they differ). Only the layers before the guided
layer and the regressor receive gradients. Stage 2 is Hinton KD of the whole student with the row's
alpha and T. The regressor is a 1x1 convolution sized from the two feature maps.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.training.distill.base import FeatureTaps
from zoo.training.distill.hinton import HintonKD
from zoo.training.distill.registry import register_distiller


@register_distiller
class FitNets(HintonKD):
    """Options: guided (student layer), hint (teacher layer), hint_epochs (stage 1 length); stage 2 is HintonKD.

    Its transfer is gated through `hint_error`: the hint regression's loss on the test set after both stages.
    """

    name = "fitnets"
    fidelity_metric = "hint_error"

    def __init__(self, settings):
        super().__init__(settings)
        options = dict(settings.options)
        self.guided, self.hint = options["guided"], options["hint"]
        self.hint_epochs = int(options["hint_epochs"])
        self.regressor: nn.Module | None = None

    @property
    def student_features(self) -> tuple[str, ...]:
        return (self.guided,)

    @property
    def teacher_features(self) -> tuple[str, ...]:
        return (self.hint,)

    def prepare(self, student, teacher, sample):
        training = student.training
        with FeatureTaps(student, (self.guided,)) as mine, FeatureTaps(teacher, (self.hint,)) as theirs, \
                torch.no_grad():
            student.eval()(sample)
            teacher(sample)
        student.train(training)
        guided, hint = mine.outputs[self.guided], theirs.outputs[self.hint]
        if guided.dim() != 4 or hint.dim() != 4:
            raise ValueError(f"fitnets needs convolutional feature maps; {self.guided} gives {tuple(guided.shape)}, "
                             f"{self.hint} gives {tuple(hint.shape)}")
        self.regressor = nn.Conv2d(guided.shape[1], hint.shape[1], kernel_size=1)

    def hint_loss(self, student_features, teacher_features):
        guided, hint = self.regressor(student_features[self.guided].float()), teacher_features[self.hint].float()
        if hint.shape[-2:] != guided.shape[-2:]:
            hint = F.adaptive_avg_pool2d(hint, guided.shape[-2:])
        return self.transfer_weight * 0.5 * F.mse_loss(guided, hint)

    def fidelity_inputs(self, student_features, teacher_features):
        return [(self.regressor(student_features[self.guided].float()), teacher_features[self.hint])]

