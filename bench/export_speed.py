"""ONNX export cost: a fresh trace per model against one trace per architecture.

A cross-validated small set exports its k fold models and the model trained on every pair,
all of one architecture (``components/export.py``, ``OnnxExporter``). This exports ``--models``
networks of a profile's architecture (untrained weights of their own: cost does not depend on
them) both ways, times each, and checks that the two ways give the same bytes.

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


def timed_exports(nets: list, folder: Path, reuse: bool) -> tuple[list[float], list[str]]:
    from components.export import OnnxExporter

    exporter, seconds, digests = OnnxExporter(opset=18), [], []
    for i, net in enumerate(nets):
        if not reuse:
            exporter = OnnxExporter(opset=18)
        path = folder / f"{'reused' if reuse else 'fresh'}-{i}.onnx"
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
        fresh, fresh_md5 = timed_exports(nets, Path(tmp), reuse=False)
        reused, reused_md5 = timed_exports(nets, Path(tmp), reuse=True)
    print(f"profile {args.profile}, {args.models} models")
    print("fresh trace per model (s): " + ", ".join(f"{s:.1f}" for s in fresh) + f"; total {sum(fresh):.1f}")
    print("one trace, reused (s):     " + ", ".join(f"{s:.1f}" for s in reused) + f"; total {sum(reused):.1f}")
    print("same bytes both ways:", fresh_md5 == reused_md5)


if __name__ == "__main__":
    main()
