"""Shared fixtures: a throwaway copy of the project, small pair folders, a private MLflow store."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir
from PIL import Image

from components.model.onnx_export import TRACES_ENV

# Property tests: the same examples on every run (a CI failure reproduces; explore with
# --hypothesis-seed or more examples by hand), no example database, and Hypothesis' own
# files (failure patches) in a temporary folder rather than the checkout.
settings.register_profile("brighthouse", database=None, derandomize=True)
settings.load_profile("brighthouse")


SESSION_TMP: dict[str, Path] = {}  # set once per test session, removed at its end


def pytest_configure(config: pytest.Config) -> None:
    """One temporary folder for what tests do not place themselves: Hypothesis' files and the
    temp files of the tools tests start (torchrun's, DVC's), so nothing is left in /tmp."""
    root = Path(tempfile.mkdtemp(prefix="brighthouse-tests-"))
    SESSION_TMP["root"] = root
    set_hypothesis_home_dir(str(root / "hypothesis"))
    # one ONNX trace per architecture for the whole session (components/model/onnx_export.py):
    # the suite's pipeline runs export networks of a few architectures, about 25 s a trace
    os.environ[TRACES_ENV] = str(root / "onnx-traces")
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED = REPO.parent / "shared"


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: this venv first on PATH, no inherited MLflow/Airflow/S3 state
    (a developer's shell may have sourced a stack's env file)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "AIRFLOW", "BRIGHTHOUSE_", "AWS_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if TRACES_ENV in os.environ:  # the session's, set above
        env[TRACES_ENV] = os.environ[TRACES_ENV]
    if "root" in SESSION_TMP:
        (SESSION_TMP["root"] / "tools").mkdir(exist_ok=True)
        env["TMPDIR"] = str(SESSION_TMP["root"] / "tools")
    env.update(extra)
    return env


def make_project_copy(dest: Path) -> Path:
    """Tracked and untracked-not-ignored files, as a fresh clone would have, plus the data."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-qm", "copy"], cwd=dest, check=True)
    subprocess.run(["dvc", "pull", "-q", "data.dvc"], cwd=dest, env=tool_env(), check=True)
    return dest


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")


def write_pair(folder: Path, pair_id: str, size=(96, 80), seed=0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    src = (target * 0.6).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{pair_id}_src.png", folder / f"{pair_id}_tar.png"
    Image.fromarray(src).save(paths[0])
    Image.fromarray(target).save(paths[1])
    return paths


@pytest.fixture
def pair_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pairs"
    for i in range(12):  # ids p08 and p11 hash into val
        write_pair(folder, f"p{i:02d}", size=(96 + 8 * i, 80), seed=i)
    return folder


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private sqlite MLflow store (and artifact folder) for one test."""
    monkeypatch.setenv("BRIGHTHOUSE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from components.registry.tracking import use_tracking

    return use_tracking()


@pytest.fixture
def params():
    from components.config import load_params

    params = load_params(REPO / "params.yaml")
    # the unit tests' 12-pair folders keep a val split; the cross-validation tests turn it back on
    return params.model_copy(update={"lmdb": params.lmdb.model_copy(update={"cross_validate_below": 0})})


def in_mode(train, mode: str, **spec):
    """``train`` (a TrainConfig) with its inference spec in ``mode`` (and ``spec``'s other keys)."""
    return train.model_copy(update={"inference": train.inference.model_copy(update={"mode": mode, **spec})})


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is provided beside the checkout in this workplace)")
    return path


def make_affine_onnx(path: Path, scale: float, offset: float) -> Path:
    """A tiny ONNX 'enhancer' computing x*scale+offset on dynamic NCHW input: its output is
    known exactly, so serving tests can check pixels, not just status codes."""
    import onnx
    from onnx import TensorProto, helper

    dims = ["batch", 3, "height", "width"]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "s"], ["m"]), helper.make_node("Add", ["m", "o"], ["output"])],
        "affine",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("o", TensorProto.FLOAT, [], [offset])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


FAKE_INFERENCE = {"mode": "tiled", "tiling": {"tile": 64, "overlap": 8, "batch": 2}}


def fake_spec():
    """The inference spec ``fake_stage_outputs`` exports and evaluates under."""
    from components.config import InferenceSpec

    return InferenceSpec(**FAKE_INFERENCE)


def fake_stage_outputs(root: Path, scale: float, offset: float, gate_passed: bool = True,
                       inference: dict | None = None) -> dict[str, Path]:
    """What train/evaluate/export leave behind, for testing register on its own."""
    import json

    import mlflow

    from components.model.presets import Preset
    from components.records import (
        EXPORT_RECORD,
        START_RECORD,
        TRAIN_RECORD,
        ExportRecord,
        StartRecord,
        TrainRecord,
        write_record,
    )
    from components.registry.tracking import MODEL_MD5_TAG, file_md5, get_or_create_experiment

    dirs = {k: root / k for k in ("train", "evaluate", "export", "register", "lmdb")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    (dirs["train"] / "model.pth").write_bytes(f"weights {scale} {offset}".encode())
    with mlflow.start_run(experiment_id=get_or_create_experiment("brighthouse")) as run:
        mlflow.set_tag(MODEL_MD5_TAG, file_md5(dirs["train"] / "model.pth"))
    write_record(dirs["train"] / TRAIN_RECORD, TrainRecord(run_id=run.info.run_id))
    write_record(dirs["train"] / START_RECORD, StartRecord(version=None, reason="a test's", iterations=1, lr=1e-3))
    identity = [[i / 255 for i in range(256)]] * 3  # the baseline preset: input as output
    (dirs["train"] / "preset.json").write_text(Preset(kind="curves", curves=identity, target_quantiles=[
        [i / 64 for i in range(65)]] * 3).model_dump_json())
    metrics = {"psnr": 25.0, "ssim": 0.9, "identity_psnr": 20.0, "gate_passed": gate_passed,
               "gate_reasons": [] if gate_passed else ["PSNR 25.00 dB < floor 30 dB"],
               "tiling": {"tile": 64, "overlap": 8, "batch": 2},
               "inference": inference or FAKE_INFERENCE,
               "max_fp16_loss_db": 0.05, "served_val_psnr": 25.0, "images": 2, "validation": "hash"}
    (dirs["evaluate"] / "metrics.json").write_text(json.dumps(metrics))
    # the split of ``pair_folder`` (hash split: p08 and p11 held out)
    ids = [f"p{i:02d}" for i in range(12)]
    (dirs["lmdb"] / "splits.json").write_text(json.dumps({"scheme": "hash", "train": [i for i in ids if i not in (
        "p08", "p11")], "val": ["p08", "p11"]}))
    make_affine_onnx(dirs["export"] / "model.onnx", scale, offset)
    write_record(dirs["export"] / EXPORT_RECORD, ExportRecord(
        onnx=str(dirs["export"] / "model.onnx"), inference=fake_spec(), max_abs_diff={}, atol=1e-3, opset=18,
        pooling="global", tlc_window=96, members=[], networks=1))
    return dirs


def lmdb_paths(folder: Path, out: Path, accepted: list[str] | None = None):
    """LmdbPaths for ``folder`` with a validation report accepting ``accepted`` (default: all)."""
    from components.data.pairs import find_pairs
    from components.lmdb import LmdbPaths
    from components.records import ValidationPolicy, ValidationReport, write_record

    report = out.parent / f"{out.name}-validate.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    ids = accepted if accepted is not None else [p.pair_id for p in find_pairs(folder)]
    policy = ValidationPolicy(modes="convert", on_failure="quarantine", max_megapixels=60)
    write_record(report, ValidationReport(folder=str(folder), policy=policy, pairs=len(ids), failed=0, failures=[],
                                          accepted=ids, notes={}, hashes={}))
    return LmdbPaths(folder, report, out)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(state: Path):
    """The real MLflow server on the sqlite store and artifacts under ``state``, started as
    ``make mlflow-ui`` does; yields its URL."""
    import time

    import httpx

    port = free_port()
    proc = subprocess.Popen(
        ["mlflow", "server", "--workers", "1", "--backend-store-uri", f"sqlite:///{state / 'mlflow.db'}",
         "--default-artifact-root", str(state / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port)],
        env=tool_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def serve_venv(root: Path) -> Path:
    """A fresh venv with the project installed as ``.[serve]``, versions held to the lock."""
    project = make_project_copy(root / "project")  # a build writes egg-info beside the sources
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(REPO / "requirements.lock"),
                          f"{project}[serve]"], env=tool_env(PIP_CACHE_DIR=str(root / "pip-cache")),
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return venv


@pytest.fixture(scope="session")
def serve_only_venv(tmp_path_factory) -> Path:
    """One serving-only install for the session (a minute to build); its tests only run it."""
    return serve_venv(tmp_path_factory.mktemp("serve-install"))
