"""Atomic file I/O and loading that never executes code.

Writes go to a temporary file in the same folder, are flushed to disk and renamed over the
target, so a reader never sees a half-written file and a killed process never leaves
something that looks finished. Files and folders get the modes ``open()`` and ``mkdir``
give (0o666 and 0o777 less the umask), so results are as readable as any other file.
Loading is safe against tampered files: tensors come from safetensors files (a JSON header
and raw bytes) or from ``torch.load(weights_only=True)``, which refuses every pickled object
other than tensors and plain containers. A file that is not what it should be raises one
:class:`~dpecnn.errors.DpecnnError` naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from dpecnn.errors import DpecnnError, OutputError

_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_beside(path: Path, create):
    """``(create(tmp), tmp)`` for a new hidden, random name ``tmp`` beside ``path``."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return create(tmp), tmp
        except FileExistsError:  # 48 random bits: practically never
            continue


def make_folder(folder: Path) -> Path:
    """``mkdir -p``; a folder that cannot be made is one :class:`OutputError` naming it."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError.writing(folder, exc) from None
    return Path(folder)


def make_staging_dir(target: Path) -> Path:
    """A new empty folder beside ``target``, to be renamed onto it when complete. Made like
    ``mkdir`` makes folders (0o777 less the umask; ``mkdtemp`` would give 0o700)."""
    target = Path(target)
    make_folder(target.parent)
    try:
        return _create_beside(target, os.mkdir)[1]
    except OSError as exc:
        raise OutputError.writing(target, exc) from None


def _atomic(path: Path, write) -> None:
    """Write through a temporary file renamed over ``path``; a failed write (full disk,
    read-only folder) removes the temporary file, leaves ``path`` as it was and is one
    :class:`OutputError` naming ``path``."""
    path = Path(path)
    make_folder(path.parent)
    try:
        # Created like open() creates files (0o666 less the umask; mkstemp would give 0o600).
        fd, tmp = _create_beside(path, lambda name: os.open(name, _CREATE_NEW, 0o666))
    except OSError as exc:
        raise OutputError.writing(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError.writing(path, exc) from None
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))


def write_json(path: Path, data: Any) -> None:
    write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``hashlib`` ``algorithm``), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DpecnnError(f"cannot read {path}: {first_line(exc)}") from None


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DpecnnError(f"cannot read {path}: {first_line(exc)}") from None


def append_jsonl(path: Path, record: dict) -> None:
    """One record at the end of a JSON-lines log (a resumed run truncates it to its checkpoint)."""
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as exc:
        raise OutputError.writing(path, exc) from None


def truncate_jsonl(path: Path, n_lines: int) -> None:
    """Keep the first ``n_lines`` records (drops what a killed run logged after its checkpoint)."""
    lines = Path(path).read_text().splitlines(keepends=True) if Path(path).exists() else []
    write_bytes(path, "".join(lines[:n_lines]).encode())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """A safetensors file (contiguous CPU copies, so shared or strided tensors are fine)."""
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    write_bytes(path, save_safetensors_bytes(plain, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; anything else is one :class:`DpecnnError`."""
    try:
        return load_safetensors_bytes(Path(path).read_bytes())
    except Exception as exc:  # safetensors raises its own error type for any malformed header
        raise DpecnnError(f"{path} is not a valid safetensors file ({first_line(exc)}); refusing to load it") from None


def tensor_metadata(path: Path) -> dict[str, str]:
    """The string metadata in a safetensors file's header (empty if none)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error type for any malformed header
        raise DpecnnError(f"{path} is not a valid safetensors file ({first_line(exc)}); refusing to load it") from None


def save_state(path: Path, state: dict) -> None:
    """``torch.save`` of tensors and plain containers (loadable with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())


def load_state(path: Path, map_location=None) -> dict:
    """``torch.load(weights_only=True)``: a pickle that would run code is refused, not run."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError for broken archives
        raise DpecnnError(f"{path} is not a valid dpecnn state file ({first_line(exc)}); refusing to load it") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
