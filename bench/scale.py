"""The pipeline at the customer's scale: N full-resolution pairs through every DVC stage.

Synthesises N distinct pairs of about 3300x2200 from ../shared/real-inputs (each a different
crop, flip and small rescale of one of the eight photos; the target is a smooth retouch:
exposure, white balance, a tone curve and a soft local brightening, different per pair), puts
them in a fresh project copy as ``data/``, versions them with ``dvc add``, then runs each
stage with ``dvc repro -s`` and records wall time, peak RSS of the whole process tree, and
bytes written (the project folder, which holds DVC's cache, and the DVC remote). A file DVC
hardlinks between ``data/`` and its cache is counted once: it is stored once.

    .venv/bin/python bench/scale.py --pairs 50
    .venv/bin/python bench/scale.py --pairs 150 --profile cpu --keep /tmp/scale150

``--profile`` picks the training profile, and so the mode: ``tiny`` (the default) trains a
tiled model, ``cpu`` a global_view one; the LMDB and so the disk are the same for both.

Prints a Markdown table row per stage; ``--json`` writes the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO.parent / "shared" / "real-inputs"
STAGES = ("validate", "lmdb", "train", "export", "evaluate", "register")
LONG_SIDE = 3300


# (side fraction, y, x) of the crop, position as a fraction of the slack: clearly different views
# (the first ten gave every pair up to 80 per photo; the rest reach 577 pairs from eight photos)
CROPS = ((0.9, 0, 0), (0.9, 1, 1), (0.75, 0, 1), (0.75, 1, 0), (0.75, 0.5, 0.5),
         (0.6, 0, 0), (0.6, 1, 1), (0.6, 0, 1), (0.6, 1, 0), (0.6, 0.5, 0.5),
         (0.9, 0, 1), (0.9, 1, 0), (0.5, 0, 0), (0.5, 1, 1), (0.5, 0, 1), (0.5, 1, 0), (0.5, 0.5, 0.5),
         (0.67, 0.5, 0), (0.67, 0.5, 1), (0.67, 0, 0.5), (0.67, 1, 0.5))


def variant(photo: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th view of ``photo`` (168 distinct ones, then they repeat): one of the 8 flips and
    quarter turns times one of the crops, resized so the long side is about 3300 px. Upside-down rooms
    are fine here: this measures the system, not the model; what matters is that validation's
    duplicate check sees distinct photos."""
    turned = np.rot90(photo[:, ::-1] if index & 4 else photo, k=index % 4)
    h, w = turned.shape[:2]
    size, fy, fx = CROPS[(index // 8) % len(CROPS)]
    ch, cw = int(h * size), int(w * size)
    y, x = int(fy * (h - ch)), int(fx * (w - cw))
    crop = np.ascontiguousarray(turned[y:y + ch, x:x + cw])
    scale = LONG_SIDE / max(ch, cw)
    return cv2.resize(crop, (round(cw * scale), round(ch * scale)), interpolation=cv2.INTER_AREA)


def retouch(image: np.ndarray, index: int) -> np.ndarray:
    """A listing-style edit: exposure, white balance, an S tone curve, a soft brightening of
    one region (a window pull in reverse), all smooth, all different per pair."""
    rng = np.random.default_rng(10_000 + index)
    x = image.astype(np.float32) / 255.0
    x = x * rng.uniform(1.05, 1.4) * rng.uniform(0.92, 1.08, size=3)
    x = np.clip(x, 0, 1) ** rng.uniform(0.75, 0.95)
    x = x + rng.uniform(0.05, 0.15) * x * (1 - x) * (2 * x - 1) * -1
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h:8, 0:w:8].astype(np.float32)
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    field = np.exp(-(((yy - cy) / (0.4 * h)) ** 2 + ((xx - cx) / (0.4 * w)) ** 2))
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    x = x * (1 + rng.uniform(0.05, 0.2) * field)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def candidate(j: int) -> tuple[int, bytes, bytes]:
    """Candidate pair ``j``: view ``j // 8`` of photo ``j % 8`` and its retouch, as (the
    target's dHash, input JPEG, target JPEG); runs in a worker process."""
    sys.path.insert(0, str(REPO))
    from components.data.pair_checks import dhash

    photos = sorted(INPUTS.glob("*.jpg"))
    src = variant(cv2.imread(str(photos[j % len(photos)]))[..., ::-1], j // len(photos))
    tar = retouch(src, j)
    encoded = [cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes() for img in (src, tar)]
    return dhash(tar), *encoded


def synthesise(n: int, data: Path, max_hash_distance: int) -> int:
    """Writes ``scale_<i>_src.jpg`` / ``_tar.jpg`` for the first ``n`` candidates whose target
    the duplicate check would not call a near-duplicate of an earlier one (candidates are made
    on every core, kept in order); returns the JPEG bytes."""
    data.mkdir(parents=True, exist_ok=True)
    limit = len(list(INPUTS.glob("*.jpg"))) * len(CROPS) * 8
    hashes: list[int] = []
    window = 2 * (os.cpu_count() or 1)  # candidates in flight: bounds memory (about 5 MB each)
    with ProcessPoolExecutor() as pool:
        for start in range(0, limit, window):
            for h, src, tar in pool.map(candidate, range(start, min(start + window, limit))):
                if len(hashes) < n and all(bin(h ^ other).count("1") > max_hash_distance for other in hashes):
                    i = len(hashes)
                    hashes.append(h)
                    (data / f"scale_{i:04d}_src.jpg").write_bytes(src)
                    (data / f"scale_{i:04d}_tar.jpg").write_bytes(tar)
            if len(hashes) == n:
                break
    if len(hashes) < n:
        raise RuntimeError(f"{n} distinct pairs are more than the {len(hashes)} these photos give")
    return sum(p.stat().st_size for p in data.iterdir())


def tree_bytes(*folders: Path, seen: set | None = None) -> int:
    """Bytes stored under ``folders``: hardlinks to one file count once (``seen`` carries the
    files already counted across calls)."""
    seen = set() if seen is None else seen
    total = 0
    for p in (p for f in folders if f.exists() for p in f.rglob("*")):
        st = p.lstat()
        if p.is_file() and not p.is_symlink() and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def disk_breakdown(project: Path, remote: Path) -> dict[str, int]:
    """Bytes per place, in this order, each file counted where it is first met."""
    seen: set = set()
    places = {"data": project / "data", "dvc cache": project / ".dvc" / "cache"}
    places |= {f"lmdb {d.name}": d for d in sorted((project / "artifacts" / "lmdb").glob("*")) if d.is_dir()}
    places |= {"remote": remote}
    sizes = {name: tree_bytes(path, seen=seen) for name, path in places.items()}
    sizes["everything else"] = tree_bytes(project, remote, seen=seen)
    return sizes


def run_measured(cmd: list[str], cwd: Path, env: dict) -> tuple[float, int, int]:
    """(seconds, peak RSS of the process tree in bytes, exit code), sampling every 0.2 s."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read()[-3000:])
    return time.perf_counter() - start, peak, proc.returncode


def tool_env() -> dict[str, str]:
    """This venv first on PATH; no MLflow/Airflow/brighthouse settings inherited from the shell."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AIRFLOW", "BRIGHTHOUSE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def make_project(dest: Path, remote: Path, iterations: int, profile: str) -> Path:
    """The project's tracked files (not its data), a few training iterations, a local remote;
    its DVC config otherwise as committed (the cache's link type included)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file() and not rel.startswith(("data/", "dvc-store/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["train"]["profile"] = profile
    params["inference"]["mode"] = params["train"]["profiles"][profile].get("for_mode", params["inference"]["mode"])
    params["train"]["profiles"][profile].update(iterations=iterations, val_every=0, checkpoint_every=0)
    # the customer's scale is a val split; its smallest settings (CI's 5 pairs) take the same path
    params["lmdb"]["cross_validate_below"] = 0
    # a few iterations do not make a good model; the gate still scores everything, then lets
    # register run, so its cost is measured too
    params["evaluate"]["gate"].update(min_psnr=0.0, min_ssim=0.0, min_psnr_gain_over_identity=-100.0,
                                      min_psnr_gain_over_baseline=-100.0, max_ciede2000_mean=100.0,
                                      max_contrast_over_identity=100.0, max_blown_highlights=1.0,
                                      max_cast_over_baseline=100.0)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["dvc", "remote", "add", "--force", "--default", "local", str(remote)], cwd=dest, check=True,
                   env=tool_env())
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "scale bench copy"]):
        subprocess.run(git + cmd, cwd=dest, check=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=20, help="training iterations (a handful: this is not about quality)")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    ap.add_argument("--profile", default="tiny", help="train.profile: tiny (tiled) or cpu (global_view)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="brighthouse-scale-"))
    project, env = make_project(work / "project", work / "remote", args.iterations, args.profile), tool_env()
    max_distance = yaml.safe_load((project / "params.yaml").read_text())["validate"]["max_hash_distance"]
    rows = [{"stage": "synthesise", "jpeg_bytes": synthesise(args.pairs, project / "data", max_distance)}]
    jpeg = rows[0]["jpeg_bytes"]
    for stage, cmd in [("data add", ["dvc", "add", "-q", "data"]), ("data push", ["dvc", "push", "-q", "data.dvc"])] + [
            (s, ["dvc", "repro", "-s", s]) for s in STAGES]:
        before = tree_bytes(project, work / "remote")
        seconds, peak, rc = run_measured(cmd, project, env)
        rows.append({"stage": stage, "seconds": round(seconds, 1), "peak_rss_mb": round(peak / 2**20),
                     "written_mb": round((tree_bytes(project, work / "remote") - before) / 2**20, 1), "rc": rc})
        print(json.dumps(rows[-1]), flush=True)
        if rc:
            break
    total = tree_bytes(project, work / "remote")
    print(f"\n{args.pairs} pairs, JPEGs {jpeg / 2**20:.0f} MB; project + remote now {total / 2**20:.0f} MB "
          f"({total / jpeg:.1f}x the JPEGs)\n")
    disk = disk_breakdown(project, work / "remote")
    print(", ".join(f"{name} {size / 2**20:.0f} MB ({size / jpeg:.2f}x)" for name, size in disk.items()))
    print("| stage | wall s | peak RSS MB | written MB |\n|---|---:|---:|---:|")
    for r in rows[1:]:
        print(f"| {r['stage']} | {r['seconds']} | {r['peak_rss_mb']} | {r['written_mb']} |")
    if args.json:
        args.json.write_text(json.dumps({"pairs": args.pairs, "profile": args.profile, "jpeg_bytes": jpeg,
                                         "total_bytes": total, "disk": disk, "rows": rows},
                                        indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
