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


def test_enhance_multipart_jpeg_keeps_jpeg_and_orientation(server):
    img = Image.fromarray(_image(200, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated: 200 wide, 300 high
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif)
    with server.client() as c:
        r = c.post("/v1/enhance", files={"file": ("listing.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (200, 300)


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
