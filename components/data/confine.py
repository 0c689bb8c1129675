"""What a delivery may make ingest read and write, decided before any file is opened.

A delivery comes from outside (an editor's upload, a watched inbox), so its names are input:
- a pair id becomes a file name in ``data/`` and a folder name beside the ingest report,
  so it must be a plain name: ASCII letters, digits, ``.``, ``_`` and ``-``, starting with a
  letter or digit, at most 128 characters (no separators, no ``..``, nothing hidden);
- every file read must be a regular file inside the delivery folder once symlinks are
  resolved. The folder itself may be a symlink (it is resolved once, as the user named it);
  a symlink inside it may point at another file inside it. A symlink or manifest path
  leading out (``../``, an absolute path, a link to ``/etc/passwd`` or to a photo elsewhere
  on disk) is refused unread, and so is anything that is not a regular file (a FIFO would
  block the reader forever, a device could be endless).
- Hard links are allowed: a hard link *is* a regular file inside the folder, and Linux
  (``fs.protected_hardlinks``) only lets a user link files they can already read and write.
  Ingest copies bytes into ``data/``, so the dataset never shares an inode with the inbox.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def unsafe_id(pair_id: str) -> str | None:
    """Why ``pair_id`` cannot name files in the dataset, or None when it can."""
    if SAFE_ID.fullmatch(pair_id) and ".." not in pair_id:
        return None
    return (f"pair id {pair_id[:80]!r} is not a plain name (use ASCII letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 128 characters, no '..')")


def outside(root: Path, path: Path) -> str | None:
    """Why ``path`` may not be read as part of the delivery in ``root``, or None when it may.

    A missing file is not refused here: that is the "partner file missing" check's finding."""
    if os.path.relpath(path, root).split(os.sep)[0] == "..":  # lexically: "../x", "/etc/x"
        return f"{path}: the path leads outside the delivery folder {root}"
    real_root = root.resolve()
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        return None if not path.is_symlink() else f"{path}: a symlink to nothing"
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission problem
        return f"{path}: cannot be resolved ({exc})"
    if real != real_root and real_root not in real.parents:
        return f"{path}: a symlink leading outside the delivery folder (refused, not read)"
    if not stat.S_ISREG(real.stat().st_mode):
        return f"{path}: not a regular file"
    return None
