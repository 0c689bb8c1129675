"""How long ``make stack`` takes and how much memory the idle stack holds.

Starts a fresh stack in a temporary folder (the DAGs of this checkout; no DVC remote is
touched), then measures: a cold start from empty folders, ``up`` again with everything running,
the memory of every service's process group after ``--idle`` seconds (PSS, so pages shared by
forked workers count once; RSS too), ``down``, and a restart over the kept data.

    .venv/bin/python bench/stack_startup.py --idle 60
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from stack.lifecycle import START_ORDER, down, up

REPO = Path(__file__).resolve().parents[1]


def group_memory_mb(pgid: int) -> tuple[float, float]:
    """(PSS, RSS) in MB of every process in the group."""
    pss = rss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith(("Pss:", "Rss:")):
                    kb = int(line.split()[1])
                    pss, rss = (pss + kb, rss) if line.startswith("Pss:") else (pss, rss + kb)
        except (OSError, ValueError, IndexError):
            continue
    return pss / 1024, rss / 1024


def timed(step, *args) -> float:
    started = time.monotonic()
    step(*args)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=60, help="seconds to wait before reading memory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    project, folder = root / "project", root / "stack"
    project.mkdir()
    (project / "dags").symlink_to(REPO / "dags")
    try:
        cold = timed(up, project, folder)
        warm = timed(up, project, folder)
        time.sleep(args.idle)
        memory = {name: group_memory_mb(int((folder / f"{name}.pid").read_text())) for name in START_ORDER}
        stop = timed(down, project, folder)
        restart = timed(up, project, folder)
    finally:
        down(project, folder)
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ncold start {cold:.1f} s, up with everything running {warm:.1f} s, "
          f"down {stop:.1f} s, restart over kept data {restart:.1f} s")
    print("\n| service | PSS MB | RSS MB |\n|---|---:|---:|")
    for name, (pss, rss) in memory.items():
        print(f"| {name} | {pss:.0f} | {rss:.0f} |")
    print(f"| **all** | **{sum(p for p, _ in memory.values()):.0f}** | {sum(r for _, r in memory.values()):.0f} |")


if __name__ == "__main__":
    main()
