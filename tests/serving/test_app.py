import io
import time

import numpy as np
from mlflow import MlflowClient
from PIL import Image

from tests.serving.conftest import register_affine


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _image(h=300, w=420, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def expected(arr: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return np.clip(arr / 255.0 * scale + offset, 0, 1)


def test_health_and_readiness_name_the_version(server):
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"ready": True, "model": "brighthouse", "version": "1"}


def test_enhance_raw_png_returns_the_models_output_at_full_size(server):
    img = _image()
    with server.client() as c:
        r = c.post("/v1/enhance", content=_png(img), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-model-version"] == "1"
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    assert out.shape == img.shape
    np.testing.assert_allclose(out / 255.0, expected(img, 0.5, 0.25), atol=1 / 255 + 1e-6)


def test_enhance_multipart_jpeg_keeps_jpeg_orientation_exif_and_icc(server):
    from PIL import ImageCms

    img = Image.fromarray(_image(200, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated: 200 wide, 300 high
    exif[0x010F] = "Canon"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif, icc_profile=icc)
    with server.client() as c:
        r = c.post("/v1/enhance", files={"file": ("listing.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    out = Image.open(io.BytesIO(r.content))
    assert out.size == (200, 300)  # pixels made upright ...
    assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "Canon"  # ... so the tag says so
    assert out.info["icc_profile"] == icc


def test_webp_in_png_out(server):
    img = _image(64, 80)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "WEBP", lossless=True)
    with server.client() as c:
        r = c.post("/v1/enhance", content=buf.getvalue())
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    np.testing.assert_allclose(np.asarray(Image.open(io.BytesIO(r.content))) / 255.0, expected(img, 0.5, 0.25),
                               atol=1 / 255 + 1e-6)


def test_model_endpoint_metrics_and_docs(server):
    with server.client() as c:
        model = c.get("/v1/model").json()
        assert c.post("/v1/enhance", content=_png(_image(100, 200))).status_code == 200
        metrics = c.get("/metrics").text
        docs, spec = c.get("/docs"), c.get("/openapi.json").json()
    assert model["version"] == "1" and model["alias"] == "champion" and model["runtime"] == "onnxruntime-cpu"
    assert model["lineage"]["gate"] == "passed" and len(model["lineage"]["git_commit"]) >= 7
    assert model["tiling"] == {"tile": 64, "overlap": 8, "batch": 2}
    assert 'brighthouse_request_seconds_count{status="ok"} 1.0' in metrics
    assert "brighthouse_megapixels_total 0.02" in metrics  # 100 x 200 px
    assert 'brighthouse_model_info{name="brighthouse",runtime="onnxruntime-cpu",version="1"} 1.0' in metrics
    assert "brighthouse_queue_depth 0.0" in metrics
    assert docs.status_code == 200 and {"/v1/enhance", "/v1/model", "/metrics"} <= set(spec["paths"])


def test_bad_inputs_get_a_4xx_with_a_reason_and_the_server_stays_up(server):
    with server.client() as c:
        r = c.post("/v1/enhance", content=b"this is not an image")
        assert r.status_code == 400 and "not a readable image" in r.json()["detail"]
        truncated = _png(_image())[:5000]
        assert c.post("/v1/enhance", content=truncated).status_code == 400
        r = c.post("/v1/enhance", content=b"\0" * (2 * 1024 * 1024))
        assert r.status_code == 413 and "over the limit" in r.json()["detail"]
        r = c.post("/v1/enhance", content=_png(np.zeros((1500, 1500, 3), np.uint8)))  # 2.25 MP > 2 MP
        assert r.status_code == 413 and "1500x1500" in r.json()["detail"]
        r = c.post("/v1/enhance", files={"other": ("x.png", b"x", "image/png")})
        assert r.status_code == 400 and "'file'" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_moving_the_champion_alias_swaps_the_model_without_restart(server, params, tmp_path):
    v2 = register_affine(params, tmp_path / "v2", 1.0, 0.0)  # becomes challenger only
    img = _image(64, 64)
    with server.client() as c:
        assert c.post("/v1/enhance", content=_png(img)).headers["x-model-version"] == "1"
        MlflowClient().set_registered_model_alias("brighthouse", "champion", v2)
        deadline = time.monotonic() + 30
        while c.get("/readyz").json()["version"] != v2:
            assert time.monotonic() < deadline, "server did not pick up the new champion"
            time.sleep(0.3)
        r = c.post("/v1/enhance", content=_png(img))
    assert r.headers["x-model-version"] == v2
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.content))), img)


def _post(base_url: str, body: bytes) -> tuple[int, str, float, bytes]:
    import httpx

    start = time.monotonic()
    r = httpx.post(f"{base_url}/v1/enhance", content=body, timeout=120)
    return r.status_code, r.headers.get("x-model-version", ""), start, r.content


def test_fifty_concurrent_requests_and_a_promotion_under_load_lose_nothing(server, params, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    v2 = register_affine(params, tmp_path / "v2", 1.0, 0.0)
    img = _image(160, 240)
    with ThreadPoolExecutor(50) as pool:
        first = list(pool.map(lambda _: _post(server.base_url, _png(img)), range(50)))
        later = [pool.submit(_post, server.base_url, _png(img)) for _ in range(100)]
        MlflowClient().set_registered_model_alias("brighthouse", "champion", v2)  # promote mid-load
        with server.client() as c:
            deadline = time.monotonic() + 30
            while c.get("/v1/model").json()["version"] != v2:
                assert time.monotonic() < deadline, "the new champion was not picked up"
                time.sleep(0.2)
            switched = time.monotonic()
        after = [pool.submit(_post, server.base_url, _png(img)) for _ in range(50)]
        results = first + [f.result() for f in later + after]
    assert [r[0] for r in results] == [200] * 200  # not one request failed
    assert {r[1] for r in first} == {"1"}
    assert {r[1] for r in results if r[2] > switched} == {v2}
    for status, version, _, body in results:  # each response is what its version computes
        scale, offset = (0.5, 0.25) if version == "1" else (1.0, 0.0)
        got = np.asarray(Image.open(io.BytesIO(body))) / 255.0
        np.testing.assert_allclose(got, expected(img, scale, offset), atol=1 / 255 + 1e-6)


def test_a_full_server_answers_503_with_retry_after_and_recovers(busy_server):
    from concurrent.futures import ThreadPoolExecutor

    ramp = np.linspace(0, 255, 1600, dtype=np.float32)
    big = _png(np.broadcast_to(ramp[None, :, None], (1200, 1600, 3)).astype(np.uint8))  # 1.9 MP, small file
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda _: _post(busy_server.base_url, big)[0], range(12)))
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    with busy_server.client() as c:
        r = None
        while r is None or r.status_code == 503:
            r = c.post("/v1/enhance", content=big)
            assert r.status_code == 200 or (r.status_code == 503 and r.headers["retry-after"] == "1")
        assert "brighthouse_rejected_total" in c.get("/metrics").text


def test_a_display_p3_photo_comes_back_in_srgb_where_a_colour_managed_viewer_shows_it(server):
    """The same scene sent as P3-tagged pixels and as its sRGB rendering gives one result,
    tagged sRGB; without colour management the P3 upload's colours would shift."""
    from PIL import ImageCms

    from tests.colour_profiles import display_p3_icc, p3_to_srgb

    p3 = _image(120, 160, seed=3)
    tagged, converted = io.BytesIO(), io.BytesIO()
    Image.fromarray(p3).save(tagged, "PNG", icc_profile=display_p3_icc())
    Image.fromarray(p3_to_srgb(p3)).save(converted, "PNG")
    with server.client() as c:
        from_p3 = c.post("/v1/enhance", content=tagged.getvalue())
        from_srgb = c.post("/v1/enhance", content=converted.getvalue())
    assert from_p3.status_code == from_srgb.status_code == 200
    out_p3, out_srgb = (Image.open(io.BytesIO(r.content)) for r in (from_p3, from_srgb))
    assert np.abs(np.asarray(out_p3, dtype=int) - np.asarray(out_srgb, dtype=int)).max() <= 1
    profile = ImageCms.ImageCmsProfile(io.BytesIO(out_p3.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).startswith("sRGB")


def test_a_heic_upload_is_enhanced_and_answered_as_jpeg(server):
    from components.data.colour import register_heif

    register_heif()
    y, x = np.mgrid[0:96, 0:128] / 128
    img = (np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0 * x], axis=-1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "HEIF", quality=95)
    with server.client() as c:
        r = c.post("/v1/enhance", files={"file": ("IMG_0001.HEIC", buf.getvalue(), "image/heic")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    out = np.asarray(Image.open(io.BytesIO(r.content)), dtype=float) / 255
    assert out.shape == img.shape and np.abs(out - expected(img, 0.5, 0.25)).mean() < 0.02
