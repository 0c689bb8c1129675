"""Global-view vs tiled serving cost on a full-size listing photo, with the width-32 NAFNet.

Exports the gb10/h100 architecture (width 32, untrained weights: speed does not depend on
them) to ONNX, registers it in a throwaway MLflow store once per mode, serves each version
with the real ``brighthouse serve`` and times ``POST /v1/enhance`` end to end on a photo from
../shared/real-inputs (about 3300x2200). Also times the transfer step alone, and reads the
server's peak RSS (VmHWM) after its requests.

    .venv/bin/python bench/global_view_speed.py --working-sizes 384 512 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real-inputs"
sys.path.insert(0, str(REPO))
WIDTH32 = {"width": 32, "enc_blk_nums": [2, 2, 4, 8], "middle_blk_num": 12, "dec_blk_nums": [2, 2, 2, 2]}


def export_width32(path: Path, members: int = 1, arch: dict = WIDTH32) -> None:
    """One network, or an ensemble of ``members`` (what a cross-validated small set ships)."""
    import torch

    from components.model.onnx_export import export_onnx
    from components.model.curves_nafnet import CurvesNAFNet
    from components.model.ensemble import Ensemble

    torch.manual_seed(0)
    curves = [list(np.linspace(0, 1, 256) ** 0.8)] * 3
    nets = [CurvesNAFNet(curves, **arch).eval() for _ in range(members)]
    export_onnx(nets[0] if members == 1 else Ensemble(nets).eval(), path, opset=18)


def register(onnx: Path, inference: dict, root: Path) -> str:
    from components.config import RegisterConfig
    from components.register import RegisterPaths, run_register
    from tests.conftest import fake_stage_outputs

    dirs = fake_stage_outputs(root, 1.0, 0.0, inference=inference)
    shutil.copy(onnx, dirs["export"] / "model.onnx")
    metrics = json.loads((dirs["evaluate"] / "metrics.json").read_text())
    (dirs["evaluate"] / "metrics.json").write_text(json.dumps({**metrics, "tiling": inference["tiling"]}))
    cfg = RegisterConfig(tensorrt="off")
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    return run_register(cfg, paths)["version"]


@contextmanager
def serving(version: str, workdir: Path):
    from mlflow import MlflowClient

    from tests.serving.conftest import start_server

    MlflowClient().set_registered_model_alias("brighthouse", "champion", version)
    with contextmanager(start_server)(workdir, state=Path(os.environ["BRIGHTHOUSE_HOME"]),
                                      max_upload_mb=50, max_megapixels=40) as server:
        yield server


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_http(server, body: bytes, repeats: int) -> tuple[float, float]:
    import httpx

    post = lambda: httpx.post(f"{server.base_url}/v1/enhance", content=body, timeout=900).raise_for_status()  # noqa: E731
    post()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        post()
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak_rss_mb(server.proc.pid)


def time_transfer(photo: np.ndarray, working_size: int, repeats: int) -> float:
    from components.data.imageio import working_copy
    from components.inference.transfer import transfer_edit

    small = working_copy(photo, working_size).astype(np.float32) / 255
    edited = np.clip(small ** 0.8, 0, 1)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        transfer_edit(photo, small, edited, 8, 1e-3)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def time_transfer_in_onnx(photo: np.ndarray, working_size: int, repeats: int) -> float:
    """The apply half of the transfer (upsample the coefficients, apply them) as an ONNX graph
    over the whole photo, in onnxruntime: the alternative to numpy strips, measured."""
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    from components.data.imageio import working_copy
    from components.inference.transfer import fit_local_affine

    class Apply(torch.nn.Module):
        def forward(self, image, coef):
            c = F.interpolate(coef, size=(image.shape[2], image.shape[3]), mode="bilinear", align_corners=False)
            out = c[:, 9:12] + c[:, 0:3] * image[:, 0:1] + c[:, 3:6] * image[:, 1:2] + c[:, 6:9] * image[:, 2:3]
            return out.clamp(0, 1)

    small = working_copy(photo, working_size).astype(np.float32) / 255
    coef = fit_local_affine(small, np.clip(small ** 0.8, 0, 1), 8, 1e-3)
    coef = np.ascontiguousarray(coef.reshape(*coef.shape[:2], 12).transpose(2, 0, 1)[None])
    dims = [{2: torch.export.Dim(f"h{i}", min=2, max=20000), 3: torch.export.Dim(f"w{i}", min=2, max=20000)}
            for i in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/apply.onnx"
        torch.onnx.export(Apply(), (torch.rand(1, 3, 64, 64), torch.rand(1, 12, 8, 8)), path, opset_version=18,
                          input_names=["image", "coef"], dynamo=True, dynamic_shapes=tuple(dims))
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            image = np.ascontiguousarray(photo.transpose(2, 0, 1)[None], dtype=np.float32) / 255
            session.run(None, {"image": image, "coef": coef})
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--working-sizes", type=int, nargs="+", default=[512])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-tiled", action="store_true")
    ap.add_argument("--members", type=int, default=1, help="serve an ensemble of this many networks")
    ap.add_argument("--cpu-arch", action="store_true", help="the cpu profile's width-16 network, not width 32")
    args = ap.parse_args()
    from components.data.imageio import load_rgb

    path = sorted(REAL.glob("*.jpg"))[0]
    photo, body = load_rgb(path), path.read_bytes()
    print(f"photo {path.name} {photo.shape[1]}x{photo.shape[0]}, width-32 NAFNet, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.update(BRIGHTHOUSE_HOME=str(tmp / "state"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'state/mlflow.db'}")
        (tmp / "state").mkdir()
        arch = yaml.safe_load((REPO / "params.yaml").read_text())["train"]["profiles"]["cpu"]["arch"] \
            if args.cpu_arch else WIDTH32
        export_width32(tmp / "model.onnx", args.members, arch)
        print(f"{args.members} network(s), {arch}")
        tiling = {"tile": 256, "overlap": 32, "batch": 4}
        modes = [{"mode": "global_view", "working_size": s, "tiling": tiling} for s in args.working_sizes]
        modes += [] if args.no_tiled else [{"mode": "tiled", "tiling": tiling}]
        for i, inference in enumerate(modes):
            version = register(tmp / "model.onnx", inference, tmp / f"v{i}")
            (tmp / f"serve{i}").mkdir()
            with serving(version, tmp / f"serve{i}") as server:
                seconds, rss = time_http(server, body, args.repeats)
            label = f"{inference['mode']} {inference.get('working_size', '')}".strip()
            print(f"HTTP end to end  {label:<16} {seconds:7.2f} s/photo   server peak RSS {rss:6.0f} MB", flush=True)
        for size in args.working_sizes:
            print(f"transfer alone    working size {size}: {time_transfer(photo, size, args.repeats):.3f} s "
                  f"(numpy, strips); apply step as ONNX on the whole photo: "
                  f"{time_transfer_in_onnx(photo, size, args.repeats):.3f} s")


if __name__ == "__main__":
    main()
