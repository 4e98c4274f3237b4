"""The pytest harness, installed as a plugin (entry point pytest11 `kdbench`): options, rows, verdicts.

  plugin  options, markers, row parametrisation, the session's verdicts -> pass / fail / skip, summaries
  faults  faults injected on purpose (`-p zoo.harness.faults --fault NAME=VALUE`), off unless loaded
"""
