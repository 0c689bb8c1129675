import io

import numpy as np
import pytest
from PIL import Image

from components.imageio import ImageError, ImageTooLargeError, decode_rgb, load_rgb


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    out = decode_rgb(_jpeg(img, exif=exif), "phone.jpg")
    assert out.shape == (60, 40, 3)


def test_cmyk_is_converted_to_rgb():
    out = decode_rgb(_jpeg(Image.new("CMYK", (20, 10), (0, 255, 255, 0))), "print.jpg")
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_16bit_grey_png_is_scaled_not_clipped():
    arr = np.full((8, 8), 32768, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    out = decode_rgb(buf.getvalue(), "scan16.png")
    assert 120 <= out.mean() <= 135


def test_truncated_file_names_the_file(tmp_path):
    data = _jpeg(Image.new("RGB", (300, 200), (1, 2, 3)))
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_rgb(bad)


def test_garbage_and_empty_files_are_rejected_by_name(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="notes.jpg"):
        load_rgb(tmp_path / "notes.jpg")
    with pytest.raises(ImageError, match="empty.jpg: empty"):
        load_rgb(tmp_path / "empty.jpg")


def test_pixel_limit_is_checked_before_decoding():
    data = _jpeg(Image.new("RGB", (400, 300)))
    with pytest.raises(ImageTooLargeError, match="400x300"):
        decode_rgb(data, "big.jpg", max_pixels=100_000)


def test_alpha_is_refused():
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4)).save(buf, "PNG")
    with pytest.raises(ImageError, match="alpha"):
        decode_rgb(buf.getvalue(), "logo.png")
