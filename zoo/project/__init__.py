"""A kdbench project: the folder it runs in and how one is made (`kdbench init`)."""
