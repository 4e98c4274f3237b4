"""The one base of every error that is the user's to mend: a bad option, setting, file or name.

Each such error says what is wrong and what would work. The pytest plugin reports it as a usage error (exit 4)
and `kdbench` as one (exit 2); any other exception is a bug in kdbench and keeps its traceback.
"""


class KdbenchInputError(Exception):
    """Bad input: an option, a setting, a file or a name; the message names it and what would work."""
