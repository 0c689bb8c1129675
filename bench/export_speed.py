"""ONNX export cost: a fresh trace per model against one trace per architecture.

A cross-validated small set exports its k fold models and the model trained on every pair,
all of one architecture (``components/export.py``, ``OnnxExporter``). This exports ``--models``
networks of a profile's architecture (untrained weights of their own: cost does not depend on
them) three ways, times each, and checks that they give the same bytes: a fresh trace per
model, one trace reused in one process, and a trace stored by an earlier process
(``BRIGHTHOUSE_ONNX_TRACES``: an exporter per model, as each export stage is a process).

    .venv/bin/python bench/export_speed.py --profile cpu --models 4
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def networks(profile: str, count: int) -> list:
    import numpy as np
    import torch

    from components.config import load_params
    from components.model.curves_nafnet import CurvesNAFNet

    train = load_params(REPO / "params.yaml").train.model_copy(update={"profile": profile})
    arch = train.profiles[profile]["arch"]
    nets = []
    for seed in range(count):
        torch.manual_seed(seed)
        curves = [list(np.linspace(0, 1, 256) ** (0.7 + 0.05 * seed))] * 3
        net = CurvesNAFNet(curves, **arch).eval()
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.05)
        nets.append(net)
    return nets


def timed_exports(nets: list, folder: Path, how: str) -> tuple[list[float], list[str]]:
    from components.model.onnx_export import OnnxExporter

    traces = folder / "traces" if how == "stored" else None
    if traces:  # stored by an earlier process
        OnnxExporter(18, traces).export(nets[0], folder / "first.onnx")
    exporter, seconds, digests = OnnxExporter(18), [], []
    for i, net in enumerate(nets):
        if how != "reused":
            exporter = OnnxExporter(18, traces)
        path = folder / f"{how}-{i}.onnx"
        start = time.perf_counter()
        exporter.export(net, path)
        seconds.append(time.perf_counter() - start)
        digests.append(hashlib.md5(path.read_bytes()).hexdigest())
    return seconds, digests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--models", type=int, default=4)
    args = ap.parse_args()
    nets = networks(args.profile, args.models)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {how: timed_exports(nets, Path(tmp), how) for how in ("fresh", "reused", "stored")}
    print(f"profile {args.profile}, {args.models} models")
    for how, label in (("fresh", "fresh trace per model"), ("reused", "one trace, reused"),
                       ("stored", "a stored trace, per process")):
        seconds = runs[how][0]
        print(f"{label + ' (s):':33s}" + ", ".join(f"{s:.1f}" for s in seconds) + f"; total {sum(seconds):.1f}")
    print("same bytes every way:", runs["fresh"][1] == runs["reused"][1] == runs["stored"][1])


if __name__ == "__main__":
    main()
