"""The optional TensorRT path: engine keys, the serving profile, shipping an engine with a
version and reusing it. The build itself needs tensorrt + a GPU and skips without them."""
import numpy as np
import pytest

from components.inference.tensorrt_engine import (
    build_engine,
    engine_files,
    engine_key,
    provider_options,
    seed_cache,
    session_providers,
    unavailable_reason,
)
from tests.conftest import make_affine_onnx


def test_an_engine_key_names_the_gpu_model_and_both_builds():
    assert engine_key("NVIDIA H100 80GB HBM3", "10.9.0.34", "1.22.0") == "NVIDIA-H100-80GB-HBM3-trt10.9.0.34-ort1.22.0"


def test_the_profile_covers_the_serving_batch_and_tiles_of_small_photos(tmp_path):
    opts = provider_options(256, 8, tmp_path)
    assert opts["trt_fp16_enable"] and opts["trt_engine_cache_enable"] and opts["trt_engine_cache_path"] == str(tmp_path)
    assert opts["trt_profile_opt_shapes"] == "input:8x3x256x256" == opts["trt_profile_max_shapes"]
    assert opts["trt_profile_min_shapes"] == "input:1x3x1x1"  # a 200x150 photo is one 150x200 tile


def test_a_recorded_engine_seeds_the_cache_once_and_never_clobbers_a_built_one(tmp_path):
    recorded, cache = tmp_path / "tensorrt" / "key", tmp_path / "trt-cache" / "key"
    assert not seed_cache(recorded, cache) and not cache.exists()
    recorded.mkdir(parents=True)
    (recorded / "graph_123_sm90.engine").write_bytes(b"engine")
    (recorded / "graph_123_sm90.profile").write_bytes(b"profile")
    assert seed_cache(recorded, cache) and set(engine_files(cache)) == {"graph_123_sm90.engine", "graph_123_sm90.profile"}
    (cache / "graph_123_sm90.engine").write_bytes(b"rebuilt here")
    assert seed_cache(recorded, cache)
    assert (cache / "graph_123_sm90.engine").read_bytes() == b"rebuilt here"


def test_without_tensorrt_the_reason_says_what_is_missing():
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here")
    assert "tensorrt" in reason.lower() or "gpu" in reason.lower()


def test_a_built_engine_matches_the_cpu_and_is_reused_not_rebuilt(tmp_path):
    import onnxruntime as ort

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    onnx_path = make_affine_onnx(tmp_path / "model.onnx", 0.5, 0.25)
    built = build_engine(onnx_path, tmp_path / "built", 64, 2)
    assert any(f.endswith(".engine") for f in built["files"]) and built["max_abs_diff_vs_cpu"] < 2e-2
    cache = tmp_path / "served" / built["key"]
    assert seed_cache(tmp_path / "built", cache)
    before = engine_files(cache)
    session = ort.InferenceSession(str(onnx_path), providers=session_providers(64, 2, cache))
    small = np.random.default_rng(1).random((1, 3, 40, 56), dtype=np.float32)  # inside the profile
    np.testing.assert_allclose(session.run(None, {"input": small})[0], small * 0.5 + 0.25, atol=2e-2)
    assert engine_files(cache) == before  # loaded, not rebuilt
