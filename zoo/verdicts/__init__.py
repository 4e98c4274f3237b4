"""How a verdict is reached: checks of each metric against its baseline, seed statistics, drift.

  status     the statuses of a finding and of a row, their order and rules (a leaf)
  gates      one small check class per kind of metric, the pooled seed spread, compare()
  stats      summaries, pooled spread, one-sided tests and what n seeds detect
  baselines  the stored baselines and the verdict on a run (pass, fail, warn, new, updated)
  drift      change points in a row's per-session means (ruptures' PELT)
"""
