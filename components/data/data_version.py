"""Turning ``data/`` into a data version, safely across crashes and concurrent runs.

- One ingest step at a time per project: ``ingest_lock`` (an ``flock`` on a file in the state
  folder, so the kernel frees it when its holder dies, even by SIGKILL). A second run says
  which process it waits for, then waits.
- A data version is *owed* from the moment ingest starts changing ``data/`` until ``dvc add``
  and ``dvc push`` (when a default remote exists) have both finished. The debt is a file in
  the state folder, so a run killed anywhere in between (moving files, inside ``dvc add``,
  before the push) leaves it behind, and the next run pays it even when the delivery itself
  is unchanged by then.
- Staging folders of killed runs are removed by the next run, under the lock.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from components.records import write_json

log = logging.getLogger(__name__)


class PushFailed(RuntimeError):
    """``dvc push`` of a new data version failed; the version stays owed (nothing is lost)."""


LOCK = "ingest.lock"
OWED = "data-version-owed.json"
STAGING = "ingest-staging-"


@contextmanager
def ingest_lock(state_dir: Path, say: Callable[[str], None] = log.warning) -> Iterator[None]:
    """Hold the project's ingest lock; waits (saying for whom) when another run holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            say(f"another `data add` (pid {holder}) is changing this dataset: waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def staging_folder(state_dir: Path, token: str) -> Path:
    return state_dir / f"{STAGING}{token}"


def remove_stale_staging(state_dir: Path) -> list[Path]:
    """Staging folders left by killed runs (call under ``ingest_lock``: none is live then)."""
    stale = sorted(p for p in state_dir.glob(f"{STAGING}*") if p.is_dir()) if state_dir.is_dir() else []
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def owe_version(state_dir: Path, data_dir: Path) -> None:
    write_json(state_dir / OWED, {"data": str(data_dir), "pid": os.getpid()})


def version_owed(state_dir: Path) -> bool:
    """True when some run changed the dataset and has not finished its data version."""
    return (state_dir / OWED).is_file()


def _dvc(repo: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=not capture,
                          capture_output=capture, text=True)


def _push(repo: Path, target: str, remote: str) -> None:
    pushed = _dvc(repo, "push", *filter(None, [target]), capture=True)  # not -q: it hides the error too
    if pushed.returncode == 0:
        return
    url = _dvc(repo, "remote", "list", capture=True).stdout.split()
    where = url[url.index(remote) + 1] if remote in url[:-1] else remote
    endpoint = (_dvc(repo, "config", f"remote.{remote}.endpointurl", capture=True).stdout.strip()
                or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    said = [line for line in (pushed.stderr + pushed.stdout).splitlines() if line.startswith("ERROR")]
    raise PushFailed(f"dvc push of {target or 'the pipeline outputs'} to remote '{remote}' ({where}"
                     f"{f' at {endpoint}' if endpoint else ''}) failed: "
                     f"{said[-1] if said else pushed.stderr.strip()[-500:]}. The data version stays owed: the "
                     "next `brighthouse data add` or retrain run pushes it (check the remote's credentials)")


def push_outputs(repo: Path) -> str | None:
    """``dvc push`` of everything the pipeline cached (data, weights, ONNX, scores) to the
    default remote, so another clone's ``dvc pull`` has this run's results; the remote's name,
    or None when there is none."""
    remote = _dvc(repo, "remote", "default", capture=True)
    if remote.returncode != 0 or not remote.stdout.strip():
        return None
    _push(repo, "", remote.stdout.strip())
    return remote.stdout.strip()


def version_data(data_dir: Path, repo: Path, state_dir: Path) -> str:
    """``dvc add`` the dataset and ``dvc push`` it when a default remote exists, then clear
    the debt; returns the data version (its md5). Safe to repeat after a crash at any point:
    both commands skip what is already done."""

    with ingest_lock(state_dir):
        _dvc(repo, "add", "-q", str(data_dir))
        remote = _dvc(repo, "remote", "default", capture=True)
        if remote.returncode == 0 and remote.stdout.strip():
            _push(repo, f"{data_dir}.dvc", remote.stdout.strip())
        (state_dir / OWED).unlink(missing_ok=True)
    return data_version(repo / f"{data_dir}.dvc")


def data_version(dvc_file: Path) -> str:
    """The md5 of the data that ``dvc_file`` (``data.dvc``) records: the data version."""
    import yaml

    try:
        outs = yaml.safe_load(dvc_file.read_text())["outs"][0]
        return str(outs["md5"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(f"{dvc_file} does not record a data version ({exc!r}): dvc add the data folder") from None
