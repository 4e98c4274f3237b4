"""The metric table: every metric a record may carry, with its unit, its direction, whether a check gates it
(or why not) and its name in exports. The verdicts, the exports and the reports read it; a record carrying a
metric that is not in this table is an error (zoo.verdicts.gates.compare).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # how its values and their drops are stated: "pt", "nats", "images/s", "count", ...
    higher_is_better: bool
    export: str | None = None  # its Bencher Metric Format measure slug; None: not exported
    ungated: str | None = None  # why no check gates it; None: a check in zoo.verdicts.gates does

    @property
    def gated(self) -> bool:
        return self.ungated is None


_SHIFT = "a fitted logit offset, not a quality: its effect is gated through the corrected accuracies"

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("params", "count", False, "params"),
    Metric("gmacs", "GMACs", False, "gmacs"),
    Metric("test_accuracy", "pt", True, "accuracy"),
    Metric("teacher_kl", "nats", False, "teacher-kl"),
    Metric("attention_distance", "", False),
    Metric("hint_error", "", False),
    Metric("val_accuracy", "pt", True),
    Metric("test_accuracy_corrected", "pt", True),
    Metric("omitted_class_accuracy_corrected", "pt", True),
    Metric("test_accuracy_corrected_t1", "pt", True),
    Metric("omitted_class_accuracy_corrected_t1", "pt", True),
    Metric("train_loss_drop", "nats", True),
    Metric("train_images_per_s", "images/s", True, "train-images-per-s"),
    Metric("train_images_per_cpu_s", "images/CPU-s", True, "train-images-per-cpu-s"),
    Metric("infer_images_per_s", "images/s", True, "infer-images-per-s"),
    # Bencher's built-in `latency` is in ns, so batch-1 speed is exported under a name of its own.
    Metric("latency_images_per_s", "images/s", True, "batch1-images-per-s"),
    Metric("engine_speed_ratio", "ratio", True, "engine-speed-ratio"),
    Metric("loader_speedup", "ratio", True, "loader-speedup"),
    # per pair of blocks timed back to back: candidate seconds / base seconds (zoo.paired); above 1 is slower
    Metric("ab_time_ratio", "x", False, "ab-time-ratio"),
    Metric("teacher_agreement", "%", True, ungated="top-1 agreement with the teacher is a coarse, bounded view of "
                                                  "teacher_kl, which is gated"),
    Metric("test_accuracy_ungated", "pt", True, ungated="smoke rows: accuracy after 4 epochs on 50 images is noise"),
    Metric("teacher_kl_ungated", "nats", False,
           ungated="smoke rows: the KL after 4 epochs on 50 images differs between CPUs by its own size"),
    Metric("omitted_class_accuracy", "pt", True, ungated="the omitted class before its bias correction: what the "
                                                       "correction repairs (the corrected accuracy is gated)"),
    Metric("omitted_class_bias_shift", "logit", True, ungated=_SHIFT),
    Metric("omitted_class_bias_shift_t1", "logit", True, ungated=_SHIFT),
)}
