"""Command line: ``python -m dpecnn COMMAND`` (the text users see is :data:`parser.DESCRIPTION`).

The flags are declared in :mod:`~dpecnn.cli.arguments`, the parser in :mod:`~dpecnn.cli.parser`
and what each command does in :mod:`~dpecnn.cli.commands`. Bad input (unknown dataset or arch,
invalid privacy targets, missing folders, a run folder with other settings or in use, a tampered
file …) and an output that cannot be written (a full disk, a read-only folder) print one
``error: …`` line and exit with code 2.
"""

from __future__ import annotations

import errno
import sys
import warnings

from dpecnn.cli.parser import build_parser
from dpecnn.errors import DpecnnError, OutputError

__all__ = ["build_parser", "main"]


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


# The errors of a write that the user can mend: a full disk or quota, a read-only or unwritable folder.
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv=None) -> int:
    warnings.formatwarning = _one_line_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own parser (and --help)
        from dpecnn.bench import main as bench_main

        bench_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DpecnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write outside dpecnn.io (a lock file, a library's own file) on a full or read-only disk
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        print(f"error: {OutputError.writing(exc.filename or 'an output file', exc)}", file=sys.stderr)
        return 2
