"""A per-user folder for things that are slow to build and fully determined by their inputs
(parsed configs, the page's JavaScript bundle). Entries are named by a hash of those inputs, so
a stale entry is never read; deleting the folder only costs the next run a rebuild."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if folder := os.environ.get("OKR_CACHE_DIR"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "okr-warehouse"


def read_text(name: str) -> str | None:
    try:
        return (cache_dir() / name).read_text(encoding="utf-8")
    except OSError:
        return None


def write_text(name: str, text: str) -> None:
    """Best effort, atomic: a read-only or full disk only costs the next run its rebuild."""
    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        return
