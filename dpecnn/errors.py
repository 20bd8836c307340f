"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class DpecnnError(Exception):
    """An error caused by bad input (arguments, files, data), not by a bug."""


class DataError(DpecnnError):
    """A MedMNIST file is missing, unreadable or malformed."""


class OutputError(DpecnnError):
    """An output could not be written (a full disk, a read-only or unwritable folder): the file
    it was for is named, and what was written before is intact (writes are atomic)."""

    @classmethod
    def writing(cls, path, exc: OSError) -> "OutputError":
        return cls(f"cannot write {path}: {exc.strerror or exc}")
