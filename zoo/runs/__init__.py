"""Running rows: the session (data and teacher cache), one seed's training, and the record of a row; jobs, launch
plans, executors and the gather of a launch.

  runner     Session, the teacher cache, run_seed / pair_record / run_pair, the code version, record building
  jobs       one (row, seed, tier) job into a results folder, resumable
  plan       a launch's jobs in waves after their teachers, seeds from power
  executors  the local executor (one process per slot) and the Slurm one (submitit job arrays)
  gather     judge a launch's complete rows; rows with missing seeds are INCOMPLETE
  commands   `kdbench run`, `kdbench launch`, `kdbench gather`
"""
