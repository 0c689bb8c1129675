"""A delivery fine-tunes the champion, against a full retrain on the same pairs (issue 28).

Per ordering (a seed shuffles the set): a champion trains from scratch on half of the pairs; a
delivery of a quarter more arrives; the last quarter is held out. On the grown set, a full
retrain (from scratch, the profile's iterations) and warm starts from the champion at each
``--shares`` of those iterations (and, with ``--keep-prior``, keeping the champion's preset) (``train.warm_start``'s recipe: lr x lr_share, a cosine schedule
of its own) train through the project's stage code; each is scored on the held-out quarter as
served (the inference spec, full resolution; PyTorch, which export checks ONNX against).

    .venv/bin/python bench/warm_start.py --set fivek_expertC --seeds 0 1 2 -S profile=cpu

``-S`` overrides params.yaml as in ``bench/kfold.py``. Prints a line per model and ordering, and
the means; training seconds are for ratios taken in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kfold import PAIRS, load_params, write_fold


def split(ids: list[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """(the champion's half, the delivery's quarter, the held-out quarter)."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    half, quarter = len(order) // 2, len(order) // 4
    return order[:half], order[half:half + quarter], order[half + quarter:]


def train(cfg, lmdb_dir: Path, out: Path, start_weights: Path | None = None) -> float:
    from components.model.distributed import ONE_PROCESS
    from components.train import TrainPaths, train_model

    start = time.perf_counter()
    train_model(cfg, TrainPaths(lmdb_dir, out), "cpu", ONE_PROCESS, start_weights=start_weights)
    return time.perf_counter() - start


def score(checkpoint: Path, lmdb_dir: Path, params) -> dict:
    from components.evaluate import evaluate_model, fit_baseline
    from components.model.model_io import load_model, torch_runner

    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    rows = evaluate_model(torch_runner(load_model(checkpoint)), lmdb_dir, gate, fit_baseline(lmdb_dir),
                          spec=params.inference)["per_image"]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "baseline_psnr", "ciede2000_mean")}


def one_ordering(pairs: dict, seed: int, params, shares: list[float], keep_prior: list[float],
                 work: Path) -> list[dict]:
    import torch

    from components.warm_start import warm_config, write_start_weights

    old, delivered, held_out = split(list(pairs), seed)
    write_fold(pairs, old, held_out, work / "lmdb_old", params)
    write_fold(pairs, old + delivered, held_out, work / "lmdb_new", params)
    cfg = params.train
    results = [{"model": "champion (half)", "seconds": train(cfg, work / "lmdb_old", work / "champion")}]
    results[0].update(score(work / "champion" / "model.pth", work / "lmdb_new", params))
    start, whole = work / "start.pth", work / "start_with_prior.pth"
    champion = torch.load(work / "champion" / "model.pth", weights_only=True)["params"]
    write_start_weights(champion, start)  # the design: the network, under the preset refitted on the grown set
    torch.save({"params": champion}, whole)  # the alternative: the champion whole, its preset too

    def warm(share: float):
        return warm_config(cfg.model_copy(update={
            "warm_start": cfg.warm_start.model_copy(update={"iterations_share": share})}))

    runs = [("full retrain", cfg, None)] + [(f"warm {share:g}", warm(share), start) for share in shares] + [
        (f"warm {share:g}, champion's preset kept", warm(share), whole) for share in keep_prior]
    for name, run_cfg, weights in runs:
        out = work / name.replace(" ", "_").replace(",", "").replace("'", "")
        row = {"model": name, "iterations": run_cfg.iterations,
               "seconds": train(run_cfg, work / "lmdb_new", out, weights)}
        results.append({**row, **score(out / "model.pth", work / "lmdb_new", params)})
    for r in results:
        print(f"seed {seed}: {r['model']}: PSNR {r['psnr']:.2f} (preset {r['baseline_psnr']:.2f}), CIEDE2000 "
              f"{r['ciede2000_mean']:.2f}, train {r['seconds']:.0f} s", flush=True)
    return [{**r, "seed": seed} for r in results]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--keep-prior", type=float, nargs="*", default=[],
                    help="also warm-start at these shares keeping the champion's preset (not refitted)")
    ap.add_argument("-S", dest="overrides", action="append", default=[])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from components.data.pairs import find_pairs

    params = load_params(args.overrides)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["BRIGHTHOUSE_HOME"] = str(tmp / "state")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        for part in ("input", "target"):
            shutil.copytree(PAIRS / args.set / part, tmp / "data" / part)
        pairs = {p.pair_id: p for p in find_pairs(tmp / "data")}
        for seed in args.seeds:
            rows += one_ordering(pairs, seed, params, args.shares, args.keep_prior, tmp / f"seed{seed}")
    means = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        means[name] = {k: float(np.mean([r[k] for r in mine])) for k in ("psnr", "ciede2000_mean", "seconds")}
    print(json.dumps({"set": args.set, "seeds": args.seeds, "overrides": args.overrides, "means": means}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"means": means, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
