"""``brighthouse serve`` under load: memory per megapixel, a burst of full-size photos, and a
Locust run with a mix of sizes and a spike above capacity.

For each mode (tiled: the `tiny` profile's width-16 network; global_view: the `cpu` profile's
network at its working size; untrained weights, since speed and memory do not depend on
them) it registers the network in a throwaway MLflow store and serves it with the real
server, in its own process group on loopback, then:
- memory: the server's peak RSS (VmHWM) after a warm-up, after one full-size photo and after
  one 38-megapixel photo, so MB per megapixel;
- burst: a lone full-size photo's time, then ``--burst`` of them sent at once: when the first
  and the last answers arrive, and the megapixels per second;
- locust (``--locust``): Locust headless (bench/locustfile.py) with the photo mix and the
  stages given: throughput, p50/p95/p99 per size, the error mix and the server's peak RSS.

``--server-repo`` serves from another checkout (say a worktree of an older commit) with
this venv, for before/after figures. Locust comes from its own venv (a load generator runs
apart from what it loads):

    python3 -m venv .venv-load && .venv-load/bin/pip install locust==2.47.0
    .venv/bin/python bench/serving_load.py --mode tiled --burst 16 --locust
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.global_view_speed import REAL, export_width32, peak_rss_mb, register  # noqa: E402
from tests.conftest import free_port, tool_env  # noqa: E402
from tests.serving.conftest import wait_ready  # noqa: E402

HUGE_SIDE = 7550  # x 5033: 38 megapixels, under serve.max_megapixels (40)


def prepare_photos(folder: Path) -> dict[str, float]:
    """full-*.jpg (the real listing photos), small-*.jpg (1600 px long side) and huge-0.jpg
    (38 MP); returns each class's megapixels."""
    from PIL import Image

    folder.mkdir(parents=True)
    sizes = {}
    for i, path in enumerate(sorted(REAL.glob("*.jpg"))):
        img = Image.open(path).convert("RGB")
        img.save(folder / f"full-{i}.jpg", quality=92)
        small = img.copy()
        small.thumbnail((1600, 1600))
        small.save(folder / f"small-{i}.jpg", quality=92)
        sizes["full"], sizes["small"] = img.width * img.height / 1e6, small.width * small.height / 1e6
        if i == 0:
            huge = img.resize((HUGE_SIDE, HUGE_SIDE * img.height // img.width), Image.Resampling.BICUBIC)
            huge.save(folder / "huge-0.jpg", quality=90)
            sizes["huge"] = huge.width * huge.height / 1e6
    return sizes


class Server:
    """``brighthouse serve`` from ``repo``'s code and params, in its own process group."""

    def __init__(self, repo: Path, workdir: Path, state: Path, serve: dict) -> None:
        raw = yaml.safe_load((repo / "params.yaml").read_text())
        raw["serve"].update({"poll_seconds": 1, "max_upload_mb": 50, "max_megapixels": 40, **serve})
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "params.yaml").write_text(yaml.safe_dump(raw))
        port = free_port()
        self.url, self.log = f"http://127.0.0.1:{port}", open(workdir / "server.log", "w")
        env = tool_env(BRIGHTHOUSE_HOME=str(state), PYTHONPATH=str(repo),
                       MLFLOW_TRACKING_URI=f"sqlite:///{state / 'mlflow.db'}")
        self.proc = subprocess.Popen(["brighthouse", "serve", "--params", str(workdir / "params.yaml"), "--port",
                                      str(port)], cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_ready(self.url, self.proc, timeout=180)

    def post(self, body: bytes) -> int:
        return httpx.post(f"{self.url}/v1/enhance", content=body, timeout=900).status_code

    def peak_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM to the group; SIGKILL if requests still in flight keep it past 30 s."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()


def memory(server: Server, photos: Path, sizes: dict[str, float]) -> dict:
    server.post((photos / "small-0.jpg").read_bytes())  # warm: the base holds the model and its buffers
    base = server.peak_mb()
    row = {"base_mb": round(base)}
    for size in ("full", "huge"):
        assert server.post((photos / f"{size}-0.jpg").read_bytes()) == 200
        row[f"{size}_peak_mb"] = round(server.peak_mb())
        row[f"{size}_mb_per_mp"] = round((server.peak_mb() - base) / sizes[size], 1)
    return row


def burst(server: Server, photos: Path, n: int, mp: float) -> dict:
    body = (photos / "full-0.jpg").read_bytes()
    start = time.perf_counter()
    server.post(body)
    lone = time.perf_counter() - start
    done, codes = [], []

    def send(i: int) -> None:
        time.sleep(0.02 * i)  # a known arrival order
        codes.append(server.post(body))
        done.append((time.perf_counter() - start, i))

    start = time.perf_counter()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.sort()
    return {"lone_s": round(lone, 2), "first_answer_s": round(done[0][0], 2), "first_answered": done[0][1],
            "last_answer_s": round(done[-1][0], 2), "ok": codes.count(200), "sent": n,
            "megapixels_per_s": round(codes.count(200) * mp / done[-1][0], 2),
            "answer_order": [i for _, i in done], "peak_mb": round(server.peak_mb())}


def locust(server: Server, photos: Path, out: Path, stages: str, mix: str) -> dict:
    binary = REPO / ".venv-load" / "bin" / "locust"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: python3 -m venv .venv-load && .venv-load/bin/pip install locust==2.47.0")
    env = {**os.environ, "BRIGHTHOUSE_LOAD_PHOTOS": str(photos), "BRIGHTHOUSE_LOAD_STAGES": stages,
           "BRIGHTHOUSE_LOAD_MIX": mix}
    subprocess.run([str(binary), "-f", str(REPO / "bench" / "locustfile.py"), "--headless", "-H", server.url,
                    "--csv", str(out / "load"), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
                   env=env, check=True)  # refusals are results here, not a failed run
    with open(out / "load_stats.csv") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    with open(out / "load_failures.csv") as f:
        errors = {f"{row['Name']}: {row['Error']}": int(row["Occurrences"]) for row in csv.DictReader(f)}
    rows = {name: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                   "p50_s": float(r["50%"]) / 1000, "p95_s": float(r["95%"]) / 1000, "p99_s": float(r["99%"]) / 1000}
            for name, r in stats.items()}
    ok = int(stats["Aggregated"]["Request Count"]) - int(stats["Aggregated"]["Failure Count"])
    duration = float(stages.split(",")[-1].split(":")[0])
    return {"by_size": rows, "errors": errors, "ok_per_minute": round(60 * ok / duration, 1),
            "peak_mb": round(server.peak_mb())}


def setup_models(tmp: Path) -> dict[str, str]:
    """mode -> registered version."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    profiles = raw["train"]["profiles"]
    versions = {}
    for i, (mode, profile) in enumerate((("tiled", "tiny"), ("global_view", "cpu"))):
        export_width32(tmp / f"{mode}.onnx", 1, profiles[profile]["arch"])
        inference = {**raw["inference"], "mode": mode}
        versions[mode] = register(tmp / f"{mode}.onnx", inference, tmp / f"v{i}")
    return versions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["tiled", "global_view"], nargs="+", default=["tiled", "global_view"])
    ap.add_argument("--server-repo", type=Path, default=REPO, help="the checkout whose code and params serve")
    ap.add_argument("--serve", nargs="*", default=[], help="serve.KEY=VALUE overrides (YAML values)")
    ap.add_argument("--burst", type=int, default=0, help="send this many full-size photos at once")
    ap.add_argument("--locust", action="store_true")
    ap.add_argument("--stages", default="90:4,150:20,210:4", help="cumulative seconds:users")
    ap.add_argument("--mix", default="full=6,small=3,huge=1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from mlflow import MlflowClient

    serve = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.serve)}
    results = {"server_repo": str(args.server_repo), "serve": serve, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "state").mkdir()
        os.environ.update(BRIGHTHOUSE_HOME=str(tmp / "state"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'state/mlflow.db'}")
        sizes = prepare_photos(tmp / "photos")
        versions = setup_models(tmp)
        for mode in args.mode:
            MlflowClient().set_registered_model_alias("brighthouse", "champion", versions[mode])
            server = Server(args.server_repo, tmp / f"serve-{mode}", tmp / "state", serve)
            try:
                row = {"memory": memory(server, tmp / "photos", sizes)}
                if args.burst:
                    row["burst"] = burst(server, tmp / "photos", args.burst, sizes["full"])
                if args.locust:
                    row["locust"] = locust(server, tmp / "photos", tmp / f"serve-{mode}", args.stages, args.mix)
            finally:
                server.stop()
            results[mode] = row
            print(mode, json.dumps(row, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
