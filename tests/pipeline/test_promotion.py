"""Issue 5's done-when, in a project copy: a briefly trained model of the demo's recipe is served, the pipeline registers a
second version in the other mode (tiled), ``brighthouse promote`` moves ``champion`` while requests are flowing, the
server switches within its poll interval without one failed request; then the MLflow server
(the UI's endpoint) moves it back, with the same result. On the way, version 2's page in the
MLflow UI opens its review against version 1 in one click (headless Chromium)."""
import io
import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import mlflow_server, tool_env
from tests.deliveries import quick_run_params
from tests.pipeline.conftest import dvc, registry, set_param
from tests.pipeline.test_dvc_repro import check_seams
from tests.serving.conftest import start_server

pytestmark = pytest.mark.slow
POLL_SECONDS = 2


def listing_photo(project) -> np.ndarray:
    img = Image.open(sorted((project / "data").glob("*_src.jpg"))[0]).convert("RGB")
    img.thumbnail((400, 400))
    return np.asarray(img)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def served_by(onnx_path, photo: np.ndarray, inference: dict) -> np.ndarray:
    """What serving must answer: the version's ONNX, in the mode its gate measured it."""
    from components.config import InferenceSpec
    from components.inference.modes import enhance
    from components.inference.onnx_session import ort_runner
    from components.inference.tiling import to_uint8

    return to_uint8(enhance(photo, ort_runner(onnx_path), InferenceSpec(**inference)))


def gated_inference(project) -> dict:
    return json.loads((project / "artifacts/evaluate/metrics.json").read_text())["inference"]


def post(base_url: str, body: bytes) -> tuple[int, str, float, bytes]:
    start = time.monotonic()
    r = httpx.post(f"{base_url}/v1/enhance?format=png", content=body, timeout=120)
    return r.status_code, r.headers.get("x-model-version", ""), start, r.content




def register_first_version(project) -> None:
    """The demo's recipe (one global_view network over the preset), briefly trained: this test
    is about promotion; test_dvc_repro trains the demo's model in full and holds its gates."""
    quick_run_params(project)
    first = dvc(project, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]


def register_second_version(project) -> None:
    """Same data, cross-validated, the other mode, and two networks: the tiled fold models
    shipped as one ensemble (the demo's model is one global_view network over the preset), so
    promotions go from a single network to an ensemble and back.
    Every gate is open, as for the first version, and against the champion too: this test is
    about promotion; the gates are tested in test_dvc_repro."""
    for key, value in (("seed", 1), ("profile", "tiny")):
        set_param(project, "train", (key,), value)
    set_param(project, "inference", ("mode",), "tiled")  # the tiny profile's recipe
    set_param(project, "lmdb", ("cross_validate_below",), 60)
    set_param(project, "lmdb", ("folds",), 2)  # the smallest ensemble: CI pays for each fold model
    set_param(project, "train", ("ships",), "ensemble")
    # each fold model trains long enough for its tiles to meet without a seam (check_seams)
    set_param(project, "train", ("fold_iterations",), 150)
    set_param(project, "evaluate", ("gate", "max_regression_vs_champion_db"), 100.0)  # the rest: quick_run_params
    r = dvc(project, "repro")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def cli_promote(project, version: str) -> None:
    r = subprocess.run(["brighthouse", "promote", version], cwd=project, env=tool_env(), capture_output=True, text=True)
    assert r.returncode == 0 and f"champion is now version {version}" in r.stdout, r.stderr


def mlflow_ui(project):
    """The real MLflow server on the project's store, started as ``make mlflow-ui`` does."""
    return mlflow_server(project / ".brighthouse")


def ui_promote(ui_url: str, version: str) -> None:
    """What the UI's Aliases dialog sends when ``champion`` is moved to ``version``."""
    r = httpx.post(f"{ui_url}/ajax-api/2.0/mlflow/registered-models/alias",
                   json={"name": "brighthouse", "alias": "champion", "version": version}, timeout=30)
    assert r.status_code == 200, r.text


def open_review_from_the_version_page(ui_url: str, tmp_path) -> str:
    """In headless Chromium: the MLflow UI's page of version 2, one click on the review link in
    its description, and the review as the UI shows it (an HTML artifact in a frame)."""
    from tests.browser import browser_page

    with browser_page(tmp_path) as (page, _):
        page.goto(f"{ui_url}/#/models/brighthouse/versions/2")
        link = page.get_by_role("link", name="Review: version 2 beside champion version 1")
        link.wait_for(timeout=60_000)
        with page.context.expect_page() as opened:  # the UI opens description links in a new tab
            link.click()
        review = opened.value
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for frame in review.frames:
                if "vs version 1 (champion)" in frame.content():
                    review.screenshot(path=str(tmp_path / "review-in-mlflow-ui.png"))
                    return frame.content()
            time.sleep(0.5)
    raise AssertionError("the review page did not open from version 2's page in the MLflow UI")


def promote_under_load(server, promote, version: str, body: bytes):
    """40 requests from 8 clients; ``promote()`` once 10 are answered (30 are then in flight or
    queued: about 25 s of work on 2 cores, against a switch within the poll interval), then 10 more
    once ``/v1/model`` reports ``version``. Returns the results, when the switch was seen, and how
    long after the promotion that was."""
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, server.base_url, body) for _ in range(40)]
        while sum(f.done() for f in futures) < 10:
            time.sleep(0.05)
        promote()
        promoted = time.monotonic()
        with server.client() as c:
            while c.get("/v1/model").json()["version"] != version:
                assert time.monotonic() - promoted < 60, "the promotion was never picked up"
                time.sleep(0.1)
        switched = time.monotonic()
        futures += [pool.submit(post, server.base_url, body) for _ in range(10)]
        return [f.result() for f in futures], switched, switched - promoted


def check_answers(results, switched: float, new: str, expected: dict) -> None:
    assert [r[0] for r in results] == [200] * len(results)  # not one request failed
    assert {r[1] for r in results if r[2] > switched} == {new}  # later answers carry the new version
    for _, version, _, body in results:  # each answer is what the version it names computes
        got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
        assert np.abs(got - expected[version]).max() <= 1, version


def test_demo_model_served_then_promotions_by_cli_and_ui_switch_it_losing_nothing(project_copy, tmp_path):
    register_first_version(project_copy)
    onnx = {"1": shutil.copy(project_copy / "artifacts/export/model.onnx", tmp_path / "v1.onnx")}
    inference = {"1": gated_inference(project_copy)}
    photo = listing_photo(project_copy)
    (tmp_path / "serve").mkdir()
    serve = contextmanager(start_server)(tmp_path / "serve", state=project_copy / ".brighthouse",
                                         poll_seconds=POLL_SECONDS, max_waiting=256)
    with serve as server:
        with server.client() as c:
            model = c.get("/v1/model").json()
        assert model["version"] == "1" and model["alias"] == "champion"

        register_second_version(project_copy)
        onnx["2"] = project_copy / "artifacts/export/model.onnx"
        inference["2"] = gated_inference(project_copy)
        assert (inference["1"]["mode"], inference["2"]["mode"]) == ("global_view", "tiled")
        networks = [json.loads((project_copy / "artifacts/export/export.json").read_text())["networks"]]
        assert networks == [2]  # version 2 is the ensemble
        check_seams(onnx["2"])  # a trained tiled model's tiles meet without a seam
        aliases = {k: str(v) for k, v in registry(project_copy).get_registered_model("brighthouse").aliases.items()}
        assert aliases == {"champion": "1", "challenger": "2"}
        expected = {v: served_by(path, photo, inference[v]).astype(int) for v, path in onnx.items()}
        assert np.abs(expected["1"] - expected["2"]).max() > 2  # two genuinely different models

        results, switched, took = promote_under_load(server, lambda: cli_promote(project_copy, "2"), "2", png(photo))
        print(f"/v1/model reported version 2 {took:.2f} s after `brighthouse promote 2` (poll {POLL_SECONDS} s)")
        assert took < POLL_SECONDS + 10  # the poll interval, plus loading and warming the new version
        check_answers(results, switched, "2", expected)

        with mlflow_ui(project_copy) as ui:  # and back, as a person would roll back in the UI
            review = open_review_from_the_version_page(ui, tmp_path)
            assert 'class="slider"' in review and "data:image/jpeg;base64," in review  # as the DOM has it
            results, switched, took = promote_under_load(server, lambda: ui_promote(ui, "1"), "1", png(photo))
        print(f"/v1/model reported version 1 {took:.2f} s after the UI moved champion back")
        assert took < POLL_SECONDS + 10
        check_answers(results, switched, "1", expected)
