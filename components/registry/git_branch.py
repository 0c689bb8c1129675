"""Record a new data/model state as a commit on a branch, without touching the checkout.

Retraining runs inside a working copy people may also use: switching branches there would
pull the floor from under them. Plumbing commands build the commit from a private index
instead: the branch (or HEAD, the first time) plus the given files as they are on disk.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def _git(repo: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def is_git_checkout(repo: Path) -> bool:
    try:
        return _git(repo, "rev-parse", "--is-inside-work-tree") == "true"
    except (OSError, subprocess.CalledProcessError):
        return False


def commit_to_branch(repo: Path, branch: str, files: list[str], message: str) -> str | None:
    """Commit ``files`` onto ``branch`` (created from HEAD if missing); returns the new
    commit, or None when the branch already holds exactly these contents (a retry)."""
    ref = f"refs/heads/{branch}"
    existed = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=repo, capture_output=True).returncode == 0
    parent = _git(repo, "rev-parse", ref if existed else "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "read-tree", parent, env=env)
        _git(repo, "update-index", "--add", "--", *files, env=env)
        tree = _git(repo, "write-tree", env=env)
    if tree == _git(repo, "rev-parse", f"{parent}^{{tree}}"):
        return None
    identity = {"GIT_AUTHOR_NAME": "brighthouse", "GIT_AUTHOR_EMAIL": "retrain@brighthouse.local",
                "GIT_COMMITTER_NAME": "brighthouse", "GIT_COMMITTER_EMAIL": "retrain@brighthouse.local"}
    commit = _git(repo, "commit-tree", tree, "-p", parent, "-m", message, env={**os.environ, **identity})
    # compare-and-swap: a concurrent writer makes this fail instead of losing its commit
    _git(repo, "update-ref", ref, commit, parent if existed else "")
    return commit
