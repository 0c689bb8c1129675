"""The pipeline on real retouching pairs (../shared/real-pairs): validate, LMDB, train, export
and evaluate (gate included) in a throwaway copy of the project whose data/ is the set.

    .venv/bin/python bench/real_pairs.py --set fivek_expertC -S train.iterations=300

Prints the evaluation summary (PSNR vs the identity and tone-curve baselines, TLC effect).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO.parent / "shared" / "real-pairs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="params override, as dvc exp run -S")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.conftest import make_project_copy, tool_env

    with tempfile.TemporaryDirectory() as tmp:
        project = make_project_copy(Path(tmp) / "project")
        data = project / "data"
        subprocess.run(["dvc", "unprotect", "data"], cwd=project, env=tool_env(), check=True)
        shutil.rmtree(data)
        data.mkdir()
        for src in sorted((PAIRS / args.set / "input").glob("*.png")):
            shutil.copy(src, data / f"{src.stem}_src.png")
            shutil.copy(PAIRS / args.set / "target" / src.name, data / f"{src.stem}_tar.png")
        start = time.perf_counter()
        cmd = ["dvc", "exp", "run", "evaluate", *(f"-S{o}" for o in args.overrides)] if args.overrides \
            else ["dvc", "repro", "evaluate"]
        proc = subprocess.run(cmd, cwd=project, env=tool_env(), capture_output=True, text=True)
        print(f"{' '.join(cmd)}: exit {proc.returncode} in {time.perf_counter() - start:.0f} s")
        if proc.returncode:
            print(proc.stderr[-3000:])
        metrics = project / "artifacts" / "evaluate" / "metrics.json"
        if metrics.exists():
            m = json.loads(metrics.read_text())
            print(json.dumps({k: v for k, v in m.items() if k not in ("tiling",)}, indent=1))


if __name__ == "__main__":
    main()
