"""Decoupled knowledge distillation (DKD) and a student of its own, gated by kdbench on MNIST."""
