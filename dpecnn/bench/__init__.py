"""Benchmarks: they print (and with ``--save`` keep) measurements, never assert them.

* ``python -m dpecnn.bench [step] …`` — the DP step's cost against the non-private step and
  Opacus (:mod:`~dpecnn.bench.step`);
* ``python -m dpecnn.bench memory …`` — peak resident memory of loading and training at MedMNIST+
  sizes and on an image folder (:mod:`~dpecnn.bench.memory`);
* ``python -m dpecnn.bench startup …`` — how soon ``python -m dpecnn --help`` and a usage error
  answer (:mod:`~dpecnn.bench.startup`).
"""

from __future__ import annotations

import importlib
import sys

from dpecnn.lazy import lazy_exports

COMMANDS = ("step", "memory", "startup")

__getattr__, __dir__, _exports = lazy_exports(
    __name__, {"step": ("BENCH_DIR", "PHASES", "device_key", "profile_steps", "run")}
)
__all__ = [*_exports, "COMMANDS", "main"]


def main(argv=None) -> None:
    """Run the benchmark named first in ``argv`` (``step`` when the first word is a flag)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "step"
    importlib.import_module(f"{__name__}.{command}").main(argv)
