"""Serving throughput and latency: the engine in-process per runtime/tile/tile batch, then
the real HTTP service end to end.

Needs a champion in the project's registry (run `make demo` first) and uses the listing
photos in ../shared/real-inputs (about 3300x2200), also downscaled to 1024 px on the long
side; without them, synthetic photos of those sizes.

    .venv/bin/python bench/serving_throughput.py --photos 2 --tiles 256 512 --batches 4 8 --concurrency 4
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from components.config import load_params
from components.data.imageio import encode, load_rgb
from components.registry.model_store import alias_version, fetch
from serving.engine import PREFERENCE, RUNTIME_NAMES, Engine

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-inputs"


def photos(n: int) -> dict[str, list[np.ndarray]]:
    files = sorted(REAL.glob("*.jpg"))[:n]
    full = [load_rgb(f) for f in files] or [
        np.random.default_rng(i).integers(0, 256, (2200, 3300, 3), dtype=np.uint8) for i in range(n)]
    small = []
    for img in full:
        pil = Image.fromarray(img)
        pil.thumbnail((1024, 1024))
        small.append(np.asarray(pil))
    return {"full": full, "1024px": small}


def measure(enhance, imgs: list[np.ndarray], concurrency: int) -> tuple[float, float]:
    """(median seconds per photo alone, photos per second with ``concurrency`` callers)."""
    enhance(imgs[0])  # warm-up
    alone = []
    for img in imgs:
        start = time.perf_counter()
        enhance(img)
        alone.append(time.perf_counter() - start)
    work = imgs * concurrency
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(enhance, work))
    return statistics.median(alone), len(work) / (time.perf_counter() - start)


def bench_engines(ref, sets: dict, args) -> None:
    import onnxruntime as ort

    runtimes = [RUNTIME_NAMES[p] for p in PREFERENCE if p in ort.get_available_providers()]
    print(f"{'runtime':<17} {'photos':<7} {'tile':>5} {'batch':>5} {'s/photo':>8} {'photos/s @' + str(args.concurrency):>13}")
    for runtime in runtimes:
        for tile in args.tiles:
            for batch in args.batches:
                engine = Engine(ref, runtime, batch, args.window_ms, tile)
                engine.warm_up()
                for label, imgs in sets.items():
                    alone, rate = measure(engine.enhance, imgs, args.concurrency)
                    print(f"{runtime:<17} {label:<7} {tile:>5} {batch:>5} {alone:>8.2f} {rate:>13.2f}", flush=True)
                engine.close()


def bench_http(sets: dict, args) -> None:
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for the test helpers
    from tests.serving.conftest import free_port, wait_ready

    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "brighthouse"), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout=120)
        for label, imgs in sets.items():
            bodies = [encode(img, "JPEG") for img in imgs]
            post = lambda body: httpx.post(f"{url}/v1/enhance", content=body, timeout=600).raise_for_status()  # noqa: E731
            alone, rate = measure(post, bodies, args.concurrency)
            print(f"http end to end   {label:<7} (model tiling)  {alone:>8.2f} {rate:>13.2f}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=2)
    ap.add_argument("--tiles", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--window-ms", type=float, default=5.0)
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--no-engines", action="store_true")
    args = ap.parse_args()
    cfg = load_params().serve
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    ref = fetch(name, alias, alias_version(name, alias))
    sets = photos(args.photos)
    print(f"model {ref.name} v{ref.version}, evaluated tiling {ref.tiling}; "
          f"{len(sets['full'])} full-size photos {sets['full'][0].shape[1]}x{sets['full'][0].shape[0]}")
    if not args.no_engines:
        bench_engines(ref, sets, args)
    if not args.no_http:
        bench_http(sets, args)


if __name__ == "__main__":
    main()
