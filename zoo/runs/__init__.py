"""Running rows: the session (data and teacher cache), one seed's training, and the record of a row.

  runner  Session, the teacher cache, train_seed / run_pair, the code version, record building
"""
