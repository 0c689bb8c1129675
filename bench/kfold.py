"""k-fold cross-validation of a training recipe on a real pair set (../shared/real-pairs).

Every pair is scored once, by a model trained on the other folds, through the project's own
stage code: LMDB writing, training (BasicSR), ONNX export and the gate's scoring of the served
composite at full resolution. The tone-curve baseline is fitted on the same training folds.

    .venv/bin/python bench/kfold.py --set fivek_expertC --k 4 -S profile=cpu
    .venv/bin/python bench/kfold.py --set fivek_expertC -S profile=tiny -S inference.mode=tiled -S iterations=...

``-S key=value`` overrides a params.yaml value (YAML): ``inference.transfer.radius=4``; keys
without a section are the train section's. Prints one line per
fold and the pooled means (over all images); ``--json`` writes the per-image rows, and
``--sheet`` a contact sheet (input | preset | output | target) of the worst and median photos,
to look at before calling a change a win; ``--save-outputs`` each photo's output, for
``bench/average_outputs.py``. ``--shrink 0.75 0.5`` also scores each fold's model
with its residual over the preset scaled down (``preset + alpha (network - preset)``), in PyTorch.
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
import yaml

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO.parent / "shared" / "real-pairs"
sys.path.insert(0, str(REPO))


def folds(ids: list[str], k: int, seed: int) -> list[list[str]]:
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def write_fold(pairs: dict, train_ids: list[str], val_ids: list[str], out: Path, params, cv: int = 0) -> None:
    """The fold's LMDB: train on ``train_ids``, val ``val_ids``. With ``cv`` (k), the training ids
    are cross-validated as the lmdb stage does for a small set (``folds/<i>/``), so training
    ships an ensemble, and val stays the fold's unseen photos."""
    from components.data.splits import make_split
    from components.lmdb import layout_destinations, write_layout

    if cv:
        dests = layout_destinations(make_split(train_ids, 0.25, 0.7, len(train_ids) + 1, cv), out)
    else:
        dests = {out / "train": ("whole", set(train_ids)), out / "train_whole": ("whole_small", set(train_ids))}
    dests[out / "val"] = ("whole", set(val_ids))
    limit = int(params.validate_.max_megapixels * 1_000_000)
    write_layout([pairs[i] for i in train_ids + val_ids], dests, params.lmdb, limit)


def cv_estimate(lmdb_dir: Path, work: Path, params, spec) -> tuple[float, float] | None:
    """What the gate reads for a cross-validated set: each fold model, and the preset fitted
    on the same folds, on the fold they did not see (mean PSNR of both)."""
    from components.evaluate import evaluate_folds
    from components.evaluation.cross_validation import folds_of
    from components.records import EXPORT_RECORD, ExportRecord, read_record

    export = read_record(ExportRecord, work / "export" / EXPORT_RECORD)
    if not export.members:
        return None
    folds = folds_of(lmdb_dir, work / "train", work / "export", export.members)
    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    result = evaluate_folds(folds, gate, spec, None)
    return result["psnr"], result["baseline_psnr"]


SHEET_SIDE = 360  # px, long side of each contact-sheet cell


class SheetCollector:
    """Small copies of each val photo's input, preset, output and target, for the contact sheet."""

    def __init__(self, preset, save_dir: Path | None = None) -> None:
        self.preset, self.cells, self.save_dir = preset, {}, save_dir

    def __call__(self, key, lq, gt, row, outputs) -> None:
        from components.data.imageio import working_copy

        out = outputs["served"][0]
        if self.save_dir:  # full resolution, for bench/average_outputs.py (seed ensembles)
            np.save(self.save_dir / f"{key}.npy", np.asarray(out, dtype=np.float16))
        self.cells[key] = [working_copy(np.clip(img, 0, 1), SHEET_SIDE) for img in (lq, self.preset.apply(lq), out, gt)]


def write_sheet(rows: list[dict], cells: dict, path: Path) -> None:
    """The worst and the median photos by PSNR, one row each: input | preset | output | target."""
    from PIL import Image, ImageDraw

    ranked = sorted(rows, key=lambda r: r["psnr"])
    picks = [("worst", ranked[0]), ("median", ranked[len(ranked) // 2])]
    strips = []
    for label, row in picks:
        tiles = [Image.fromarray((np.clip(c, 0, 1) * 255).round().astype(np.uint8)) for c in cells[row["image"]]]
        h = max(t.height for t in tiles)
        strip = Image.new("RGB", (sum(t.width for t in tiles), h + 18), "white")
        x = 0
        for t in tiles:
            strip.paste(t, (x, 18))
            x += t.width
        ImageDraw.Draw(strip).text((4, 2), f"{label}: {row['image']}  output {row['psnr']:.2f} dB, preset "
                                   f"{row['baseline_psnr']:.2f} dB | input | preset | output | target", fill="black")
        strips.append(strip)
    sheet = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), "white")
    y = 0
    for strip in strips:
        sheet.paste(strip, (0, y))
        y += strip.height
    sheet.save(path)


def shrunk_runner(checkpoint: Path, alpha: float):
    """The trained network with its residual over the preset scaled by ``alpha`` (a variance cut)."""
    import torch

    from components.model.model_io import load_model, torch_runner

    model = load_model(checkpoint)

    class Shrunk(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            prior = model.prior(x)
            return prior + alpha * (model.body(prior) - prior)

    return torch_runner(Shrunk())


def shrunk_scores(lmdb_dir: Path, work: Path, params, preset, alphas: list[float]) -> dict[float, list[dict]]:
    from components.evaluate import evaluate_model

    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    return {a: evaluate_model(shrunk_runner(work / "train" / "model.pth", a), lmdb_dir, gate, preset,
                              spec=params.inference)["per_image"] for a in alphas}


def run_fold(lmdb_dir: Path, work: Path, params, shrink: list[float], save_dir: Path | None = None) -> dict:
    from components.evaluate import evaluate_model, fit_baseline
    from components.export import ExportPaths, run_export
    from components.inference.onnx_session import ort_runner
    from components.train import TrainPaths, run_train

    start = time.perf_counter()
    run_train(params.train, TrainPaths(lmdb_dir, work / "train"))
    train_s = time.perf_counter() - start
    run_export(params.export.model_copy(update={"fp16": False}), ExportPaths(work / "train", lmdb_dir, work / "export"))
    spec = params.inference
    gate = params.evaluate.model_copy(update={"compare_pooling": False})
    sheet = SheetCollector(fit_baseline(lmdb_dir), save_dir)
    result = evaluate_model(ort_runner(work / "export" / "model.onnx"), lmdb_dir, gate, sheet.preset,
                            spec=spec, on_pair=sheet)
    from components.records import TRAIN_RECORD, TrainRecord, read_record

    trained = read_record(TrainRecord, work / "train" / TRAIN_RECORD)
    check = trained.network_vs_preset
    ships = trained.ships + (f" (fold models {check.network_psnr:.2f} vs their presets {check.preset_psnr:.2f} dB; "
                             f"by share of the network {check.scaled_psnr}: {check.residual_scale:g} ships)"
                             if check else "")
    return {"train_seconds": train_s, "rows": result["per_image"], "cells": sheet.cells, "ships": ships,
            "preset": sheet.preset.kind, "cv_estimate": cv_estimate(lmdb_dir, work, params, spec),
            "shrunk": shrunk_scores(lmdb_dir, work, params, sheet.preset, shrink)}


def load_params(overrides: list[str]):
    from components.config import Params

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for item in overrides:
        key, value = item.split("=", 1)
        section = key.split(".")[0] if key.split(".")[0] in raw else "train"
        node = raw[section]
        *parents, leaf = key.removeprefix(section + ".").split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    raw["train"].update(val_every=0, checkpoint_every=0)
    return Params.model_validate(raw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC", help="a set in ../shared/real-pairs, or a pair folder")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=0, help="run only the first N folds (0 = all)")
    ap.add_argument("--fold", type=int, help="run only this fold (0-based)")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="[SECTION.]KEY=VALUE")
    ap.add_argument("--train-pairs", type=int, default=0,
                    help="train on only this many of each fold's training pairs (a client's few pairs; 0 = all)")
    ap.add_argument("--cv", type=int, default=0,
                    help="cross-validate each fold's training pairs in this many folds, as the lmdb stage does "
                         "for small sets, so the fold models decide what ships (0 = one model on all of them)")
    ap.add_argument("--shrink", type=float, nargs="*", default=[], help="also score these residual strengths")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path, help="write the worst and median photos here (PNG)")
    ap.add_argument("--save-outputs", type=Path,
                    help="write each photo's served output here (<image>.npy, float16): runs with different "
                         "-S seed=... are averaged by bench/average_outputs.py, a seed ensemble")
    args = ap.parse_args()
    from components.data.pairs import find_pairs
    from components.model.onnx_export import TRACES_ENV

    params = load_params(args.overrides)
    if args.save_outputs:
        args.save_outputs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["BRIGHTHOUSE_HOME"] = str(tmp / "state")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.setdefault(TRACES_ENV, str(tmp / "onnx-traces"))  # one trace for all folds
        if Path(args.set).is_dir():  # a pair folder of our own layout (e.g. the sample: data/)
            data = Path(args.set)
        else:
            data = tmp / "data"
            shutil.copytree(PAIRS / args.set / "input", data / "input")
            shutil.copytree(PAIRS / args.set / "target", data / "target")
        pairs = {p.pair_id: p for p in find_pairs(data)}
        rows, seconds, cells, shrunk = [], [], {}, {a: [] for a in args.shrink}
        for i, val_ids in enumerate(folds(list(pairs), args.k, args.seed)[: args.folds or None]):
            if args.fold is not None and i != args.fold:
                continue
            train_ids = [p for p in pairs if p not in val_ids][: args.train_pairs or None]
            write_fold(pairs, train_ids, val_ids, tmp / f"lmdb{i}", params, args.cv)
            fold = run_fold(tmp / f"lmdb{i}", tmp / f"fold{i}", params, args.shrink, args.save_outputs)
            rows += fold["rows"]
            for a, shrunk_rows in fold["shrunk"].items():
                shrunk[a] += shrunk_rows
            cells.update(fold["cells"])
            seconds.append(fold["train_seconds"])
            m = {k: np.mean([r[k] for r in fold["rows"]]) for k in ("psnr", "baseline_psnr", "ciede2000_mean")}
            print(f"fold {i}: {len(val_ids)} val, train {fold['train_seconds']:.0f} s, PSNR {m['psnr']:.2f} "
                  f"(preset {fold['preset']} {m['baseline_psnr']:.2f}), CIEDE2000 {m['ciede2000_mean']:.2f}"
                  + (", the gate's cross-validated estimate {:.2f} (its presets {:.2f})".format(*fold["cv_estimate"])
                     if fold["cv_estimate"] else "") + f"; ships: {fold['ships']}",
                  flush=True)
        if args.sheet:
            write_sheet(rows, cells, args.sheet)
    summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "image"}
    summary["gain_over_preset_db"] = summary["psnr"] - summary["baseline_psnr"]
    summary["train_seconds_per_fold"] = float(np.mean(seconds))
    for a, shrunk_rows in shrunk.items():
        summary[f"alpha {a}"] = {k: float(np.mean([r[k] for r in shrunk_rows])) for k in
                                 ("psnr", "ciede2000_mean", "contrast_error", "cast")}
    print(json.dumps({"set": args.set, "k": args.k, "overrides": args.overrides, **summary}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1, default=float))


if __name__ == "__main__":
    main()
