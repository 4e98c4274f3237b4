"""Paired speed A/B: the candidate tree timed against its base tree, block by block, alternately, in one window.

  blocks    the timed blocks: training steps of a row, inference forward passes, the data path (run in a worker)
  worker    one side's process for one pair of every block, answering build and time requests over JSON lines
  session   the sides (git worktrees, interpreters), a fresh process pair per pair, the AB/BA turns, the extension
  ab        from a request to one "ab" record per block (judged by zoo.verdicts.paired through the gates)
  command   `kdbench speed`
"""
