"""The server under concurrent load: memory bounded by the megapixels admitted, answers in
arrival order, a photo over the whole budget refused. Real uvicorn on loopback; memory read
from the server's /proc."""
import io
import shutil
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from serving.admission import MB_PER_MEGAPIXEL
from tests.conftest import fake_stage_outputs
from tests.serving.conftest import start_server


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def gradient_png(h: int, w: int, seed: int = 0) -> bytes:
    """A large photo in a small upload (a smooth gradient compresses well)."""
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] + seed
    buf = io.BytesIO()
    Image.fromarray(np.broadcast_to(ramp % 256, (h, w, 3)).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def register_onnx(params, root: Path, onnx: Path, inference: dict) -> str:
    from components.register import RegisterPaths, run_register

    dirs = fake_stage_outputs(root, 1.0, 0.0, inference=inference)
    shutil.copy(onnx, dirs["export"] / "model.onnx")
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    return run_register(params.register_, paths)["version"]


def send_all(url: str, bodies: list[bytes], stagger_s: float) -> list[tuple[int, float, int]]:
    """Each body from its own client, ``stagger_s`` apart: (status, seconds to answer, index) by finish."""
    start, done = time.monotonic(), []

    def send(i: int, body: bytes) -> None:
        time.sleep(stagger_s * i)
        status = httpx.post(f"{url}/v1/enhance", content=body, timeout=300).status_code
        done.append((status, time.monotonic() - start, i))

    threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(done, key=lambda d: d[1])


@pytest.mark.slow
def test_concurrent_large_uploads_stay_within_the_megapixel_budget(tmp_path, params, mlflow_store):
    from tests.serving.conftest import register_affine

    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path, max_upload_mb=20, max_megapixels=8, max_inflight_megapixels=6.5, max_wait_s=120)
    server = next(gen)
    try:
        bodies = [gradient_png(2400, 2500, seed=i) for i in range(5)]  # 6 MP each: one fits at a time
        assert httpx.post(f"{server.base_url}/v1/enhance", content=bodies[0], timeout=120).status_code == 200
        base = peak_rss_mb(server.proc.pid)  # the model, its buffers and one photo's worth
        done = send_all(server.base_url, bodies, stagger_s=0.0)
        peak = peak_rss_mb(server.proc.pid)
    finally:
        gen.close()
    assert [d[0] for d in done] == [200] * 5  # the rest waited their turn
    # five at once would need about 5 x 6 x MB_PER_MEGAPIXEL over the base; the budget admits one
    assert peak - base <= 6.5 * MB_PER_MEGAPIXEL, (base, peak)


@pytest.mark.slow
def test_the_first_of_several_concurrent_requests_is_answered_first(tmp_path, params, mlflow_store):
    """With a real (width-8) NAFNet tiled, the model is the bottleneck: the batcher serves the
    oldest request's tiles first, so answers come in arrival order, not all together at the end."""
    import torch

    from components.model.onnx_export import export_onnx
    from components.model.nafnet_arch import NAFNet

    torch.manual_seed(0)
    net = NAFNet(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]).eval()
    export_onnx(net, tmp_path / "net.onnx", opset=18)
    register_onnx(params, tmp_path / "v1", tmp_path / "net.onnx",
                  {"mode": "tiled", "tiling": {"tile": 64, "overlap": 8, "batch": 2}})
    gen = start_server(tmp_path, max_upload_mb=20, max_megapixels=2)
    server = next(gen)
    try:
        body = gradient_png(600, 800)
        start = time.monotonic()
        assert httpx.post(f"{server.base_url}/v1/enhance", content=body, timeout=300).status_code == 200
        lone = time.monotonic() - start
        done = send_all(server.base_url, [body] * 5, stagger_s=0.05)
    finally:
        gen.close()
    assert [d[0] for d in done] == [200] * 5
    assert [d[2] for d in done][:2] == [0, 1], done  # arrival order
    assert done[0][1] <= 2 * lone + 0.5, (lone, done)  # not held back until the others are done too


def test_a_photo_over_the_whole_budget_gets_413_saying_why(tmp_path, params, mlflow_store):
    from tests.serving.conftest import register_affine

    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path, max_upload_mb=20, max_megapixels=8, max_inflight_megapixels=1.5)
    server = next(gen)
    try:
        with server.client() as c:
            r = c.post("/v1/enhance", content=gradient_png(1200, 1600))  # 1.9 MP
            small = c.post("/v1/enhance", content=gradient_png(600, 800))
    finally:
        gen.close()
    assert r.status_code == 413 and "1.9-megapixel" in r.json()["detail"]
    assert "serve.max_inflight_megapixels" in r.json()["detail"] and small.status_code == 200


@pytest.mark.slow
def test_during_a_promotion_a_global_view_request_does_not_wait_behind_tiled_tiles(tmp_path, params, mlflow_store):
    """Each version has its own engine and batcher, so while the old (tiled) version finishes
    its backlog, the new global-view version answers at once: it shares the CPU, not a queue."""
    import torch
    from mlflow import MlflowClient

    from components.model.onnx_export import export_onnx
    from components.model.nafnet_arch import NAFNet

    torch.manual_seed(0)
    export_onnx(NAFNet(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]).eval(),
                tmp_path / "net.onnx", opset=18)
    tiling = {"tile": 64, "overlap": 8, "batch": 2}
    register_onnx(params, tmp_path / "v1", tmp_path / "net.onnx", {"mode": "tiled", "tiling": tiling})
    v2 = register_onnx(params, tmp_path / "v2", tmp_path / "net.onnx",
                       {"mode": "global_view", "working_size": 128, "tiling": tiling})
    gen = start_server(tmp_path, max_upload_mb=20, max_megapixels=2)
    server = next(gen)
    try:
        body = gradient_png(900, 1200)
        start = time.monotonic()
        assert httpx.post(f"{server.base_url}/v1/enhance", content=body, timeout=300).status_code == 200
        lone_tiled = time.monotonic() - start
        tiled: list = []
        backlog = threading.Thread(target=lambda: tiled.extend(send_all(server.base_url, [body] * 3, 0.0)))
        backlog.start()
        time.sleep(0.2)
        MlflowClient().set_registered_model_alias("brighthouse", "champion", v2)
        while httpx.get(f"{server.base_url}/v1/model").json()["version"] != v2:
            time.sleep(0.1)
        start = time.monotonic()
        reply = httpx.post(f"{server.base_url}/v1/enhance", content=body, timeout=300)
        global_view = time.monotonic() - start
        still_running = backlog.is_alive()
        backlog.join()
    finally:
        gen.close()
    assert reply.status_code == 200 and reply.headers["x-model-version"] == v2
    assert [t[0] for t in tiled] == [200] * 3
    assert still_running and global_view < lone_tiled, (global_view, lone_tiled)
