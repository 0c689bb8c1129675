import io

import numpy as np
import pytest
from PIL import Image

from components.imageio import ImageError, ImageTooLargeError, decode_image, decode_rgb, load_rgb


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


def test_alpha_is_flattened_onto_white_when_asked():
    from components.imageio import decode_image

    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(buf, "PNG")
    out = decode_image(buf.getvalue(), "logo.png", flatten_alpha=True)
    assert (out.rgb == 255).all() and out.notes == ["alpha channel flattened onto white"]


def test_conversions_and_orientation_are_reported():
    import cv2

    from components.imageio import decode_image

    ok, png16 = cv2.imencode(".png", np.full((6, 5, 3), 40000, np.uint16))
    deep = decode_image(png16.tobytes(), "deep.png")
    assert deep.notes == ["16-bit PNG reduced to 8 bits"] and deep.rgb.dtype == np.uint8
    assert 150 <= deep.rgb.mean() <= 160  # 40000/65535 of full scale, not clipped
    exif = Image.Exif()
    exif[0x0112] = 6
    phone = decode_image(_jpeg(Image.new("RGB", (60, 40)), exif=exif), "phone.jpg")
    assert phone.orientation == 6 and phone.rgb.shape == (60, 40, 3) and phone.notes == []
    raw = decode_image(_jpeg(Image.new("RGB", (60, 40)), exif=exif), "phone.jpg", upright=False)
    assert raw.rgb.shape == (40, 60, 3)
    grey = decode_image(_jpeg(Image.new("L", (8, 8), 7)), "grey.jpg")
    assert grey.notes == ["greyscale expanded to RGB"] and grey.rgb.shape == (8, 8, 3)


def test_a_header_beyond_pillows_own_bomb_limit_is_ours_to_name():
    from tests.deliveries import png_header_only

    with pytest.raises(ImageTooLargeError, match="bomb.png: over the limit of 60000000 pixels"):
        decode_rgb(png_header_only(20000, 20000), "bomb.png")


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_images_are_refused_and_a_still_one_is_not(fmt):
    frames = [Image.new("RGB", (24, 16), colour) for colour in ("red", "green", "blue")]
    animated, still = io.BytesIO(), io.BytesIO()
    frames[0].save(animated, fmt, save_all=True, append_images=frames[1:])
    frames[0].save(still, fmt)
    with pytest.raises(ImageError, match=rf"animated or multi-frame {fmt} \(3 frames\)"):
        decode_image(animated.getvalue(), "anim")
    assert decode_image(still.getvalue(), "still").rgb.shape == (16, 24, 3)
