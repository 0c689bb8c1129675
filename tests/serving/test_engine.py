"""The serving engine's runtime choice and its optional TensorRT path."""
import numpy as np
import pytest

from serving.engine import PREFERENCE, RUNTIME_NAMES, open_session
from tests.serving.conftest import register_affine


@pytest.fixture
def champion_ref(params, tmp_path, mlflow_store):
    from components.registry.model_store import fetch

    version = register_affine(params, tmp_path / "v1", 0.5, 0.25)
    return fetch("brighthouse", "champion", version)


def test_asking_for_a_runtime_that_is_absent_says_what_is_there(champion_ref):
    import onnxruntime as ort

    missing = [RUNTIME_NAMES[p] for p in PREFERENCE if p not in ort.get_available_providers()]
    if not missing:
        pytest.skip("every runtime is present on this machine")
    with pytest.raises(RuntimeError, match=f"serve.runtime={missing[0]} is not available here"):
        open_session(champion_ref, missing[0], 64, 2)


def test_tensorrt_serves_only_from_an_engine_verified_on_the_val_split(champion_ref, monkeypatch):
    """TensorRT's FP16 engine is a different numeric path from the ONNX the gate scored: it may
    serve only when register built it and scored it on the val split (shipped under
    ``tensorrt/<key>/``), for this GPU and this profile. Otherwise CUDA (or CPU) serves."""
    import onnxruntime as ort

    import serving.engine as engine

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(PREFERENCE))  # a GPU machine
    monkeypatch.setattr(engine, "unavailable_reason", lambda: None)
    monkeypatch.setattr(engine, "current_engine_key", lambda: "GPU-X-trt10-ort1")
    monkeypatch.setattr(engine, "session_providers", lambda tile, batch, cache: ["TRT", tile, batch])
    assert engine.providers_for(champion_ref, "auto", 64, 2) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="no TensorRT engine verified on the val split for GPU-X"):
        engine.providers_for(champion_ref, "tensorrt", 64, 2)
    verified = champion_ref.onnx_path.parent / "tensorrt" / "GPU-X-trt10-ort1"
    verified.mkdir(parents=True)
    (verified / "g_1_sm90.engine").write_bytes(b"plan")
    assert engine.providers_for(champion_ref, "auto", 64, 2) == ["TRT", 64, 2]  # the tiling the gate used
    assert engine.providers_for(champion_ref, "auto", 64, 4)[0] == "CUDAExecutionProvider"  # another profile


def test_a_global_view_version_runs_once_at_working_size_and_edits_full_resolution(params, tmp_path, mlflow_store):
    from components.registry.model_store import fetch
    from serving.engine import Engine

    spec = {"mode": "global_view", "working_size": 64, "tiling": {"tile": 64, "overlap": 8, "batch": 2}}
    version = register_affine(params, tmp_path / "v1", 0.5, 0.25, inference=spec)
    engine = Engine(fetch("brighthouse", "champion", version))
    try:
        seen = []
        run = engine._run_batch
        engine.batcher.run_batch = lambda b: (seen.append(b.shape), run(b))[1]
        photo = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
        out = engine.enhance(photo)
        assert seen == [(1, 3, 46, 64)]  # the whole photo, once, at working size
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - (photo * 0.5 + 0.25 * 255)).max() <= 1.5  # x*0.5+0.25, full resolution
    finally:
        engine.close()
