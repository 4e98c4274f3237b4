"""kdbench's data path against the naive one, in one run: the speed-up of an epoch of training.

naive: a torch DataLoader over a Dataset that turns each sample into a PIL image and applies
torchvision transforms one sample at a time (the tutorial loop). kdbench: the engine's resident
uint8 tensors with batched augmentation. Same model, optimiser, batch size and images.
"""
import time

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from zoo.catalog.pairs import get_pair
from zoo.measure.costs import LoadMonitor
from zoo.records.record import Record
from zoo.runs.row_records import timing_record
from zoo.training.data import stratified_subset
from zoo.training.engine import make_optimizer, seed_everything, train
from zoo.training.forward import TrainOptions
from zoo.training.registry import build_model
from zoo.training.transfer_sets import SUBSET_SEED

CASES = {"mnist-mlp800": "mnist-mlp800-lr0.01", "cifar10-cnn5": "cifar10-cnn5-d0.5"}  # rows whose recipe is timed


class PerSampleImages(Dataset):
    """uint8 images served one PIL image at a time through torchvision transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).squeeze(-1).numpy()
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def naive_epoch_images_per_s(model, recipe, data, indices) -> float:
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if recipe.augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])
    loader = DataLoader(PerSampleImages(data.train_x[indices], data.train_y[indices], transform),
                        batch_size=recipe.batch_size, shuffle=True, num_workers=0)
    optimizer = make_optimizer(model.parameters(), recipe)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(indices) / (time.perf_counter() - start)


@pytest.mark.speed
@pytest.mark.parametrize("case", list(CASES))
def test_loader_speedup(case, bench):
    if bench.session.opts.device.type != "cpu":
        pytest.skip("the naive loop is a CPU reference; GPU epoch times are reported by the pair rows")
    pair = get_pair(CASES[case])
    recipe = pair.recipes[bench.tier].replace(epochs=1)
    data = bench.session.dataset(pair.dataset)

    def measure() -> Record:
        with LoadMonitor() as load:
            seed_everything(0, torch.device("cpu"))
            naive = naive_epoch_images_per_s(build_model(pair.student, data.num_classes), recipe, data,
                                             stratified_subset(data.train_y, recipe.train_subset, SUBSET_SEED))
            seed_everything(0, torch.device("cpu"))
            ours = train(build_model(pair.student, data.num_classes), recipe, data, 0,
                         TrainOptions(log=lambda line: None)).train_images_per_s
        print(f"{case}: kdbench {ours:.0f} img/s, naive per-sample DataLoader {naive:.0f} img/s, x{ours / naive:.2f}")
        return timing_record(
            "loader", f"loader-speedup-{case}", pair, recipe, bench.tier, bench.session,
            {"loader_speedup": [ours / naive]}, load.result,
            {"kdbench_images_per_s": ours, "naive_images_per_s": naive, "images": recipe.train_subset},
            seeds=(0,), device="cpu")

    bench.finish(measure(), remeasure=measure)
