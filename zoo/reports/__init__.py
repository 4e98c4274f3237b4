"""How reports are drawn: leaderboards, the study's claims, trends, evidence and the dark-knowledge analysis.

  leaderboard  markdown leaderboards from records (never edited by hand)
  claims       the poster's claims tested on kdbench's records
  trend        trend PNGs from the history store
  evidence     A/A reruns and injected regressions as markdown
  analysis/    what distillation changes in a student, from stored test logits
"""
