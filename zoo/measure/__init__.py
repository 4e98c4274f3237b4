"""What is measured besides accuracy: model costs, machine load and speed, the engine against plain PyTorch.

  costs  parameters, multiply-adds (fvcore), throughput timing, peak memory, machine load and speed probe
  speed  kdbench's training engine timed against a plain PyTorch loop in the same process
"""
