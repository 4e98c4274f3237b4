"""Inference throughput and latency of every model of the tier (zoo.suite.inference)."""
from zoo.suite.inference import test_inference as test_inference
