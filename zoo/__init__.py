"""kdbench's library: models, data, distillation losses, the training engine and the study's pair table."""
