"""Deliveries in the inbox: what the retraining DAG (and ``brighthouse data deliver``) act on.

Protocol, so a half-copied folder is never read: a delivery is a folder ``INBOX/<name>/`` of
pairs; it is complete once ``INBOX/<name>/DELIVERY_COMPLETE`` exists (written last), and
``INBOX/READY`` tells the watcher to look (the trigger deletes it, so the next delivery can
set it again). Each complete delivery is ingested once: a ledger in the state folder records
it with its marker's timestamp, so touching the marker again re-ingests it. A delivery folder
that is a symlink (to somewhere outside the watched inbox) is recorded as refused, unread.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from components.config import ValidateConfig
from components.data.confine import unsafe_id
from components.data.ingest import IngestError, ingest
from components.errors import StageFailed
from components.records import write_json

log = logging.getLogger(__name__)
COMPLETE = "DELIVERY_COMPLETE"
READY = "READY"


def _ledger_entry(state_dir: Path, delivery: Path) -> Path:
    return state_dir / "deliveries" / f"{delivery.name}.json"


def _stamp(delivery: Path) -> int:
    return (delivery / COMPLETE).stat().st_mtime_ns


def pending_deliveries(inbox: Path, state_dir: Path) -> list[Path]:
    """Complete deliveries not yet ingested, oldest marker first."""
    if not inbox.is_dir():
        return []
    todo = []
    for folder in sorted(p for p in inbox.iterdir() if p.is_dir() and (p / COMPLETE).is_file()):
        entry = _ledger_entry(state_dir, folder)
        if not entry.is_file() or json.loads(entry.read_text())["stamp"] != _stamp(folder):
            todo.append(folder)
    return sorted(todo, key=_stamp)


def ingest_deliveries(inbox: Path, data_dir: Path, cfg: ValidateConfig, state_dir: Path) -> dict:
    """Ingest every pending delivery into ``data_dir``. A delivery refused as a whole (a
    conflicting id, nothing valid) is recorded with its reason instead of stopping the rest."""
    results = []
    for folder in pending_deliveries(inbox, state_dir):
        stamp = _stamp(folder)
        try:
            if folder.is_symlink():
                raise IngestError(f"{folder} is a symlink to a folder outside the inbox: refused, not read")
            summary = ingest(folder, data_dir, cfg, state_dir)
            result = {"delivery": folder.name, "added": summary["added"], "replaced": summary["replaced"],
                      "rejected": [f["pair_id"] for f in summary["rejected"]], "report": summary["report"]}
        except (IngestError, StageFailed) as exc:
            result = {"delivery": folder.name, "added": [], "replaced": [], "rejected": [], "refused": str(exc)}
        log.info("delivery %s: %s", folder.name, json.dumps(result))
        write_json(_ledger_entry(state_dir, folder), {**result, "stamp": stamp})
        results.append(result)
    changed = sum(len(r["added"]) + len(r["replaced"]) for r in results)
    return {"deliveries": results, "changed_pairs": changed}


def deliver(source: Path, inbox: Path, name: str | None = None) -> Path:
    """Copy ``source`` into the inbox as one delivery, following the protocol above."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder")
    name = name or source.name
    if unsafe_id(name):
        raise ValueError(f"delivery name {name!r} is not a plain name: use ASCII letters, digits, '.', '_' and '-'")
    inbox.mkdir(parents=True, exist_ok=True)
    final = inbox / name
    if final.exists():
        raise FileExistsError(f"{final} already exists: choose another --name")
    tmp = inbox / f".incoming-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    tmp.rename(final)
    (final / COMPLETE).touch()
    (inbox / READY).touch()
    return final
