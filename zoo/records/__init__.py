"""Where results live: the typed record, its store, the metric table, provenance, history and exports.

  record   Record: one typed result record for every kind of run (pair, speed, engine, loader), its schema
  store    RecordStore: the one reader of a records folder (list, load, validate, newest per row, one error policy)
  metrics  the metric table: unit, direction, export name, gated or why not
  results  record paths, load/write, provenance, the machine fingerprint, project_root
  io       atomic writes and checked reads
  logits   the test-logits file stored beside a record
  history  every record of every session in one SQLite database (all of kdbench's SQL)
  bencher  Bencher Metric Format export
"""
