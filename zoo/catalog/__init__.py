"""What is benchmarked, as pure data: training recipes, the row table and the study's own records.

  recipes  Recipe / Distill / Optim: what to train, how long, with which optimiser, data and distillation
  pairs    the rows (teacher -> student pairs, their teacher and control rows) of every tier, one entry each
  study    the study's records (../shared/study): the figure a row is put beside, only for its own recipe
"""
