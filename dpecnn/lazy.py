"""Package namespaces that import their submodules on first use (PEP 562).

``python -m dpecnn --help`` and argument errors must answer without loading torch, Opacus,
escnn or medmnist (seconds of imports); a package ``__init__`` that imported its submodules
eagerly would load them for any ``from dpecnn.<package>.<light module> import …``.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """``__getattr__`` and ``__dir__`` for ``package`` whose public names live in submodules:
    ``exports`` maps each submodule's name to the names it provides. A name is imported from its
    submodule on first access and then kept in the package's namespace."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*home, *vars(sys.modules[package])})

    return __getattr__, __dir__, sorted(home)
