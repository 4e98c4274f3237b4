"""Dark-knowledge analysis of stored runs: what distillation changes in a student, and the schemes' results.

  metrics  confusion, per-class accuracy, soft-target class similarity, entropy over T, agreement,
           KL and calibration (ECE), all on test-set logits
  runs     the newest run of each row under a results root, with the test logits stored beside it
  pairs    one teacher -> student pair: the student with and without KD against its teacher (PNG + markdown)
  schemes  omit-a-class, the partial-data curve and the alpha x T grid with its selection bias
  report   `kdbench analyze`: every pair and scheme found, one markdown report and its PNGs

It never retrains: every figure comes from the logits each benchmark run stores beside its record.
"""
