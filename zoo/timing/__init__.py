"""Timed workloads built on the training engine: kdbench's loop against a plain PyTorch loop (engine_speed) and
the inference cases (inference). zoo.measure below holds the measurements themselves (costs, fidelity), which the
training loop uses and which import nothing of it."""
