"""A serving box's install: ``pip install ".[serve]"`` alone, in a fresh venv, serves a model
that the full install registered, through an MLflow server (the production shape: the serving
box holds no store, only the MLflow client)."""
import io
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import mlflow_server
from tests.serving.conftest import register_affine, start_server

pytestmark = pytest.mark.slow
MAX_SERVE_INSTALL_MB = 600
NOT_FOR_SERVING = ("torch", "basicsr", "airflow", "dvc", "great_expectations", "onnx", "lmdb", "sqlalchemy")


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def test_a_serving_only_install_serves_what_the_full_install_registered(params, tmp_path, mlflow_store,
                                                                       serve_only_venv):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    venv = serve_only_venv
    size = disk_mb(venv)
    print(f"serving install: {size:.0f} MB in {venv}")
    assert size <= MAX_SERVE_INSTALL_MB
    probe = ("import importlib.util, sys; "
             f"print([m for m in {NOT_FOR_SERVING!r} if importlib.util.find_spec(m)])")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    with mlflow_server(Path(os.environ["BRIGHTHOUSE_HOME"])) as registry_url:
        (tmp_path / "box").mkdir()
        serve = contextmanager(start_server)(tmp_path / "box", state=tmp_path / "box" / "state",
                                             bin_dir=venv / "bin", env={"MLFLOW_TRACKING_URI": registry_url})
        with serve as server, server.client() as c:
            r = c.post("/v1/enhance", content=buf.getvalue())
            page = c.get("/")
    assert r.status_code == 200 and r.headers["x-model-version"] == "1"
    out = np.asarray(Image.open(io.BytesIO(r.content)), dtype=float) / 255
    np.testing.assert_allclose(out, np.clip(img / 255 * 0.5 + 0.25, 0, 1), atol=1 / 255 + 1e-6)
    assert page.status_code == 200 and "Drop a photo here" in page.text
