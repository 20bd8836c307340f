"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class DpecnnError(Exception):
    """An error caused by bad input (arguments, files, data), not by a bug."""


class DataError(DpecnnError):
    """A MedMNIST file is missing, unreadable or malformed."""
