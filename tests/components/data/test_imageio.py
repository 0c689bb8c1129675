import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from components.data.colour import register_heif
from components.data.imageio import ImageError, ImageTooLargeError, decode_image, load_rgb


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    out = decode_image(_jpeg(img, exif=exif), "phone.jpg").rgb
    assert out.shape == (60, 40, 3)


def test_cmyk_is_converted_to_rgb():
    out = decode_image(_jpeg(Image.new("CMYK", (20, 10), (0, 255, 255, 0))), "print.jpg").rgb
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_16bit_grey_png_is_scaled_not_clipped():
    arr = np.full((8, 8), 32768, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    out = decode_image(buf.getvalue(), "scan16.png").rgb
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
        decode_image(data, "big.jpg", max_pixels=100_000).rgb


def test_alpha_is_refused():
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4)).save(buf, "PNG")
    with pytest.raises(ImageError, match="alpha"):
        decode_image(buf.getvalue(), "logo.png").rgb


def test_alpha_is_flattened_onto_white_when_asked():
    from components.data.imageio import decode_image

    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(buf, "PNG")
    out = decode_image(buf.getvalue(), "logo.png", flatten_alpha=True)
    assert (out.rgb == 255).all() and out.notes == ["alpha channel flattened onto white"]


def test_conversions_and_orientation_are_reported():
    import cv2

    from components.data.imageio import decode_image

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
        decode_image(png_header_only(20000, 20000), "bomb.png").rgb


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_images_are_refused_and_a_still_one_is_not(fmt):
    frames = [Image.new("RGB", (24, 16), colour) for colour in ("red", "green", "blue")]
    animated, still = io.BytesIO(), io.BytesIO()
    frames[0].save(animated, fmt, save_all=True, append_images=frames[1:])
    frames[0].save(still, fmt)
    with pytest.raises(ImageError, match=rf"animated or multi-frame {fmt} \(3 frames\)"):
        decode_image(animated.getvalue(), "anim")
    assert decode_image(still.getvalue(), "still").rgb.shape == (16, 24, 3)


def _smooth(h=48, w=64) -> np.ndarray:
    """A smooth gradient photo (lossy codecs keep it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return (np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.7 - 0.4 * x * y], axis=-1) * 255).astype(np.uint8)


def _encoded(arr: np.ndarray, fmt: str, **kwargs) -> bytes:
    register_heif()  # for writing HEIF too
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_a_display_p3_photo_is_converted_to_srgb_as_its_profile_defines():
    from tests.colour_profiles import display_p3_icc, p3_to_srgb

    px = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    decoded = decode_image(_encoded(px, "PNG", icc_profile=display_p3_icc()), "p3.png")
    expected = p3_to_srgb(px)
    assert np.abs(decoded.rgb.astype(int) - expected).max() <= 1  # LittleCMS vs the definition
    assert np.abs(px.astype(int) - expected).mean() > 5           # so taking P3 as sRGB would be wrong
    assert "Display P3" in decoded.colour
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(decoded.icc))).startswith("sRGB")


def test_srgb_tagged_and_untagged_photos_keep_their_pixels_and_profile():
    px = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = decode_image(_encoded(px, "PNG", icc_profile=srgb), "s.png")
    untagged = decode_image(_encoded(px, "PNG"), "u.png")
    assert (tagged.rgb == px).all() and tagged.icc == srgb and tagged.colour is None
    assert (untagged.rgb == px).all() and untagged.icc is None and untagged.colour is None


def test_an_unreadable_profile_is_dropped_with_a_note_not_an_error():
    px = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    decoded = decode_image(_encoded(px, "PNG", icc_profile=b"not an icc profile" * 10), "broken.png")
    assert (decoded.rgb == px).all() and decoded.icc is None  # never re-embedded in what is written
    assert "unreadable" in decoded.colour


def test_heic_decodes_like_the_jpeg_of_the_same_photo_with_its_profile_applied():
    from tests.colour_profiles import display_p3_icc, p3_to_srgb

    px = _smooth()
    plain = decode_image(_encoded(px, "HEIF", quality=95), "room.heic")
    p3 = decode_image(_encoded(px, "HEIF", quality=95, icc_profile=display_p3_icc()), "p3.heic")
    assert plain.rgb.shape == px.shape and np.abs(plain.rgb.astype(int) - px).mean() < 2
    assert np.abs(p3.rgb.astype(int) - p3_to_srgb(px)).mean() < 2 and "Display P3" in p3.colour


def test_a_corrupt_heic_names_the_file():
    data = _encoded(_smooth(), "HEIF", quality=90)
    with pytest.raises(ImageError, match="cut.heic"):
        decode_image(data[: len(data) // 2], "cut.heic")
