"""Small shared helpers: seeding, the cache directory, atomic writes, hashing.

Introduced in chapter 1; every later chapter relies on them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "COURSE_LIB_CACHE"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that a notebook's results repeat (chapter 1)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cache_dir() -> Path:
    """The cache root: $COURSE_LIB_CACHE, else the user's cache dir (chapter 1)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("course_lib"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _usual_permissions(fd: int) -> None:
    """Give a file made by `mkstemp` (0600) the mode a plain open() would give it.

    Without this, every model, ledger and transcript file in the cache was readable
    by its owner alone, unlike the corpus's audio files: a cache or a shipped
    artifact copied to another account could not be read there (chapter 1).
    """
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    if hasattr(os, "fchmod"):  # POSIX; on Windows the mode bits mean little
        os.fchmod(fd, 0o666 & ~mask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file and rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _usual_permissions(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy `src` to `dst` via a temporary file and rename: never half-copied."""
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        try:
            _usual_permissions(fd)
        finally:
            os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
    return atomic_write_bytes(path, (text + "\n").encode())


def _json_default(obj: Any) -> Any:
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_hash(obj: Any, length: int = 12) -> str:
    """A short, stable hash of a (dataclass) configuration, used as a cache key."""
    if is_dataclass(obj):
        obj = asdict(obj)
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):  # 64 KiB: little memory
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of `data`."""
    return hashlib.sha256(data).hexdigest()
