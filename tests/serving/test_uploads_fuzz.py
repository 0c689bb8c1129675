"""Property: whatever bytes and headers arrive, the upload path answers a 4xx/503 or a photo,
never another exception (which would be a 500 and a traceback)."""
import asyncio
import io

import numpy as np
from fastapi import HTTPException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.requests import Request

from components.config import ServeConfig
from serving.metrics import ServingMetrics
from serving.uploads import ReceiveBudget, Received, decode_upload, receive_upload

CFG = ServeConfig(max_upload_mb=0.25, max_megapixels=0.5, upload_timeout_s=5)


def _seed_images() -> list[bytes]:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"lossless": True}), ("GIF", {}),
                    ("TIFF", {}), ("BMP", {})):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


ANY_BYTES = st.one_of(st.binary(max_size=4096), mutated_images())
FORMATS = st.one_of(st.none(), st.sampled_from(["png", "jpeg", "PNG", "gif", "", "../x"]))


def _accepted_or_4xx(call) -> None:
    try:
        call()
    except HTTPException as exc:
        assert 400 <= exc.status_code < 500 or exc.status_code == 503, exc.status_code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ANY_BYTES, name=st.text(max_size=40), fmt=FORMATS)
def test_decoding_any_bytes_gives_a_photo_or_a_4xx(data, name, fmt):
    _accepted_or_4xx(lambda: decode_upload(Received(data, name or "upload"), CFG, fmt))


def _request(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> Request:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    messages = messages or [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/enhance", "headers": headers, "query_string": b""}
    return Request(scope, receive)


HEADER_VALUES = st.one_of(st.binary(max_size=80), st.sampled_from(
    [b"multipart/form-data; boundary=xyz", b"multipart/form-data", b"image/png", b"-1", b"99999999999", b"12"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=HEADER_VALUES, length=HEADER_VALUES,
       chunks=st.lists(st.one_of(st.binary(max_size=2048), mutated_images()), max_size=4),
       multipart=st.booleans())
def test_receiving_any_body_and_headers_gives_bytes_or_a_4xx(content_type, length, chunks, multipart):
    if multipart and chunks:  # a plausible form around fuzzed content
        chunks = [b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
                  + chunks[0] + b"\r\n--xyz--\r\n", *chunks[1:]]
    headers = [(b"content-type", content_type), (b"content-length", length)]
    budget = ReceiveBudget(1 << 20, ServingMetrics())

    def call():
        received = asyncio.run(receive_upload(_request(headers, chunks), CFG, budget))
        assert isinstance(received.data, bytes)

    _accepted_or_4xx(call)
    assert budget.used == 0  # every byte taken from the budget was given back
