"""The study's small models against their published parameter counts; the registry's errors."""
import pytest
import torch

from zoo.measure.costs import count_gmacs, count_params
from zoo.training.registry import UnknownModelError, create_model, list_models, register_model


@pytest.mark.parametrize(("name", "params"), [
    ("mlp1200", 2_395_210),  # 784-1200-1200-10
    ("mlp800", 1_276_810),  # 784-800-800-10
    ("cnn5", 357_514),  # the study's 5-layer CNN
])
def test_parameter_counts(name, params):
    assert count_params(create_model(name)) == params


def test_cnn5_gmacs_and_skipped_ops_are_recorded():
    gmacs, unsupported = count_gmacs(create_model("cnn5"), (3, 32, 32))
    assert gmacs == pytest.approx(0.010700288)
    assert unsupported == {"aten::max_pool2d": 3}  # fvcore does not count pooling


def test_dropout_arguments():
    assert create_model("mlp1200").net[3].p == 0.8
    assert not any(isinstance(m, torch.nn.Dropout) for m in create_model("mlp800").modules())
    assert create_model("cnn5", dropout=0.0).classifier[4].p == 0.0


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownModelError) as err:
        create_model("resnet19")
    assert "resnet18" in str(err.value) and "cnn5" in str(err.value)


def test_duplicate_registration_is_rejected():
    assert "cnn5" in list_models()

    def cnn5():
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="registered twice"):
        register_model(cnn5)
