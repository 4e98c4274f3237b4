"""Where results live: result records and their provenance, atomic files, the history store, exports.

  results  one JSON record per benchmark run, its path, its provenance and the machine it ran on
  io       atomic writes and checked reads
  history  every record of every session in one SQLite database (all of kdbench's SQL)
  bencher  Bencher Metric Format export
"""
