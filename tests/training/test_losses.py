"""The KD loss against hand-computed values and its defining properties."""
import math

import pytest
import torch
import torch.nn.functional as F

from zoo.training.losses import kd_loss, softened_kl


def hand_kd(student, teacher, label, alpha, T):
    """One sample, written out with math.exp: alpha T^2 KL(q_t || q_s) + (1 - alpha) CE."""
    def softmax(z, t):
        e = [math.exp(v / t) for v in z]
        return [v / sum(e) for v in e]

    q_s, q_t, p_s = softmax(student, T), softmax(teacher, T), softmax(student, 1)
    kl = sum(t * math.log(t / s) for s, t in zip(q_s, q_t))
    return alpha * T * T * kl + (1 - alpha) * -math.log(p_s[label])


def test_matches_hand_computed_value():
    student, teacher = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0]
    expected = hand_kd(student, teacher, 1, alpha=0.7, T=4.0)
    got = kd_loss(torch.tensor([student]), torch.tensor([teacher]), torch.tensor([1]), 0.7, 4.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.54796075, rel=1e-7)  # the value itself, computed once by hand


def test_batchmean_averages_per_sample_values():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    t = torch.tensor([[0.2, 3.0, -1.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([1, 2])
    per_sample = [hand_kd(s[i].tolist(), t[i].tolist(), int(y[i]), 0.9, 20.0) for i in range(2)]
    assert kd_loss(s, t, y, 0.9, 20.0).item() == pytest.approx(sum(per_sample) / 2, rel=1e-4)  # float32 x T^2=400


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_elementwise_reduction_is_batchmean_over_num_classes():
    torch.manual_seed(0)
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    batchmean = kd_loss(s, t, None, 1.0, 3.0)
    assert kd_loss(s, t, None, 1.0, 3.0, "elementwise").item() == pytest.approx(batchmean.item() / 10, rel=1e-6)
    assert kd_loss(s, t, None, 1.0, 3.0, "elementwise", kl_scale=2).item() == pytest.approx(batchmean.item() / 5)
    # and it is what nn.KLDivLoss()'s default computed in the study's code
    study = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1)) * 9
    assert kd_loss(s, t, None, 1.0, 3.0, "elementwise").item() == pytest.approx(study.item(), rel=1e-5)


def test_alpha_zero_is_cross_entropy():
    torch.manual_seed(1)
    s, t, y = torch.randn(16, 10), torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert kd_loss(s, t, y, 0.0, 5.0).item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)


def test_zero_when_student_matches_teacher_unlabeled():
    z = torch.randn(4, 10)
    assert kd_loss(z, z.clone(), None, 1.0, 10.0).item() == pytest.approx(0.0, abs=1e-6)


def test_unlabeled_needs_alpha_one_and_ignores_labels():
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    with pytest.raises(ValueError, match="alpha == 1"):
        kd_loss(s, t, None, 0.7, 10.0)
    labelled = kd_loss(s, t, torch.zeros(4, dtype=torch.long), 1.0, 10.0)
    assert kd_loss(s, t, None, 1.0, 10.0).item() == pytest.approx(labelled.item())


def test_gradient_scales_with_temperature_as_hinton_says():
    """d(T^2 KL)/dz_s = T (q_s - q_t): the T^2 factor keeps soft gradients from vanishing as 1/T^2."""
    torch.manual_seed(2)
    t = torch.randn(1, 10)
    for T in (1.0, 4.0, 20.0):
        s = torch.randn(1, 10, requires_grad=True)
        kd_loss(s, t, None, 1.0, T).backward()
        expected = T * (F.softmax(s.detach() / T, 1) - F.softmax(t / T, 1))
        assert torch.allclose(s.grad, expected, atol=1e-6)


def test_softened_kl_is_the_unscaled_soft_term():
    s, t = torch.randn(5, 10), torch.randn(5, 10)
    assert (softened_kl(s, t, 6.0) * 36).item() == pytest.approx(kd_loss(s, t, None, 1.0, 6.0).item(), rel=1e-6)


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError, match="batchmean"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), None, 1.0, 2.0, "sum")


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("row_id", ["mnist-mlp800-kd-lr0.01", "mnist-mlp800-kd-lr0.1", "mnist-mlp800-kd-unlabeled-lr0.01",
                                    "mnist-mlp800-kd-unlabeled-lr0.1"])
def test_each_faithful_mnist_row_trains_on_its_study_scripts_loss(row_id):
    """distill_mnist.py: KLDivLoss()(log_softmax(y/T), softmax(t/T)) * (T*T*2*alpha) + CE * (1-alpha);
    distill_mnist_unlabeled.py: KLDivLoss()(log_softmax(y/T), softmax(t/T)) * T * T (no factor 2)."""
    import torch.nn as nn

    from zoo.catalog.pairs import get_pair
    from zoo.training.distill.registry import create_distiller

    g = torch.Generator().manual_seed(3)
    y, teacher_scores, labels = torch.randn(16, 10, generator=g), 4 * torch.randn(16, 10, generator=g), torch.arange(16) % 10
    for tier, recipe in get_pair(row_id).recipes.items():
        kd = recipe.distill
        T, alpha = kd.temperature, kd.alpha
        kl = nn.KLDivLoss()(F.log_softmax(y / T, dim=1), F.softmax(teacher_scores / T, dim=1))
        if kd.unlabeled:
            study = kl * T * T
        else:
            study = kl * (T * T * 2.0 * alpha) + F.cross_entropy(y, labels) * (1. - alpha)
        got = create_distiller(kd)(y, teacher_scores, None if kd.unlabeled else labels, {}, {})
        assert got.item() == pytest.approx(study.item(), rel=1e-5), (row_id, tier)
