"""Import escnn where lie_learn cannot be imported.

escnn imports ``lie_learn`` (Wigner D-matrices of SO(3)) when it is imported, although
dpecnn only builds planar groups (C_N, O(2)). lie_learn ships compiled extensions built
against numpy 1 for a few Pythons, so on a GPU node with numpy 2 or another Python
``import escnn`` fails for a module dpecnn never calls. :func:`import_escnn` therefore tries
lie_learn first and, only if that fails, registers a stand-in for the one function escnn
imports from it; calling it raises an error that says why. Planar models are unaffected
(tested by hiding lie_learn).
"""

from __future__ import annotations

import sys
import types
import warnings

WIGNER_MODULE = "lie_learn.representations.SO3.wigner_d"


def _stand_in(reason: str) -> None:
    def wigner_D_matrix(*args, **kwargs):
        raise RuntimeError(
            f"escnn's SO(3) features need lie_learn, which could not be imported here ({reason}); "
            "dpecnn's planar models do not use them"
        )

    parts = WIGNER_MODULE.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        module = types.ModuleType(name, "stand-in registered by dpecnn: lie_learn could not be imported")
        module.__path__ = []  # a package, so that the submodule import resolves
        sys.modules[name] = module
        if i > 1:
            setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], module)
    sys.modules[WIGNER_MODULE].wigner_D_matrix = wigner_D_matrix


def import_escnn():
    """``escnn``, imported with lie_learn or, where it cannot be imported, with its stand-in."""
    try:
        __import__(WIGNER_MODULE)
    except Exception as exc:  # ImportError, or numpy's ABI errors for extensions built against numpy 1
        for name in [m for m in sys.modules if m == "lie_learn" or m.startswith("lie_learn.")]:
            del sys.modules[name]
        _stand_in(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # escnn warns about py3nj (only used for SO(3)) at import
        import escnn
    return escnn
