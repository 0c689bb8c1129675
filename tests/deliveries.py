"""A delivery of new pairs with every kind of problem real deliveries have, built from scratch.

``build_delivery`` writes good pairs mixed with one pair per bad case into an inbox and
returns what validation must say about each.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ORIENTATION = 0x0112
SWAPPED = "target does not line up with the input (swapped files, a crop or another shot)"

# pair id -> the reason validation must give (modes: convert)
BAD = {
    "nopartner": "partner file missing",
    "cut": "target does not decode",
    "empty": "input does not decode",
    "garbage": "target does not decode",
    "bomb": "input does not decode",
    "sideways": "EXIF orientation differs between input and target",
    "mismatch": "input and target differ in size",
    "tiny": "smaller than 64 px on its short side",
    "strip": "absurd aspect ratio",
    "swapped": SWAPPED,
    "crop": SWAPPED,
    "twin": "near-duplicate of another pair",
    "redelivered": "near-duplicate of another pair",
}
GOOD = ["new0", "new1", "new2", "phone"]
# good under ``modes: convert`` (with a note), bad under ``modes: reject``
CONVERTED = {"deep": "16-bit PNG", "cmyk": "CMYK", "grey": "greyscale", "palette": "palette",
             "alpha": "alpha channel"}


def scene(seed: int, size=(128, 96)) -> np.ndarray:
    """A smooth random 'photo' (w, h) with some texture: JPEG-safe, distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    img = cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)


def edit(rgb: np.ndarray) -> np.ndarray:
    """A retoucher's global edit: brighter, warmer."""
    out = rgb.astype(np.float32) * np.array([1.15, 1.05, 0.95]) + 12
    return np.clip(out, 0, 255).astype(np.uint8)


def save(path: Path, rgb: np.ndarray, mode: str | None = None, orientation: int | None = None) -> None:
    img = Image.fromarray(rgb)
    if mode == "P":
        img = img.quantize(256)
    elif mode:
        img = img.convert(mode)
    kwargs = {}
    if orientation:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        kwargs["exif"] = exif.tobytes()
    if path.suffix == ".jpg":
        kwargs["quality"] = 95
    img.save(path, **kwargs)


def save_pair(inbox: Path, pair_id: str, inp: np.ndarray, tar: np.ndarray, ext: str = ".png", **kw) -> None:
    save(inbox / f"{pair_id}_src{ext}", inp, **kw)
    save(inbox / f"{pair_id}_tar{ext}", tar, **kw)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height: enough to test the pixel limit."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _bad_files(inbox: Path) -> None:
    save_pair(inbox, "nopartner", scene(10), edit(scene(10)))
    (inbox / "nopartner_tar.png").unlink()
    save_pair(inbox, "cut", scene(11), edit(scene(11)), ext=".jpg")
    data = (inbox / "cut_tar.jpg").read_bytes()
    (inbox / "cut_tar.jpg").write_bytes(data[: len(data) // 2])
    save_pair(inbox, "empty", scene(12), edit(scene(12)))
    (inbox / "empty_src.png").write_bytes(b"")
    save(inbox / "garbage_src.jpg", scene(13))
    (inbox / "garbage_tar.jpg").write_text("<html>404 Not Found</html>")
    (inbox / "bomb_src.png").write_bytes(png_header_only(20000, 20000))
    save(inbox / "bomb_tar.png", scene(14))


def _bad_geometry(inbox: Path, stored_target: Path) -> None:
    raw = scene(20, (128, 96))  # the camera's sideways pixels; tag 6 says "rotate to portrait"
    save(inbox / "sideways_src.jpg", raw, orientation=6)
    save(inbox / "sideways_tar.jpg", edit(raw))  # the editor's tool ignored the tag
    save_pair(inbox, "mismatch", scene(21), edit(scene(21)))
    save(inbox / "mismatch_src.png", scene(21, (160, 96)))
    save_pair(inbox, "tiny", scene(22, (48, 40)), edit(scene(22, (48, 40))))
    save_pair(inbox, "strip", scene(23, (480, 96)), edit(scene(23, (480, 96))))
    save(inbox / "swapped_src.png", scene(24))
    save(inbox / "swapped_tar.png", edit(scene(25)))
    crop = cv2.resize(scene(26)[24:72, 32:96], (128, 96), interpolation=cv2.INTER_CUBIC)
    save(inbox / "crop_src.png", scene(26))
    save(inbox / "crop_tar.png", edit(crop))
    save_pair(inbox, "twin", scene(0), edit(scene(0)), ext=".jpg")  # new0 again, as JPEG
    stored = np.asarray(Image.open(stored_target).convert("RGB"))
    save_pair(inbox, "redelivered", stored, np.clip(stored.astype(int) + 3, 0, 255).astype(np.uint8), ext=".jpg")


def _converted(inbox: Path) -> None:
    save(inbox / "deep_src.png", scene(30))
    ok, png = cv2.imencode(".png", edit(scene(30))[..., ::-1].astype(np.uint16) * 257)
    (inbox / "deep_tar.png").write_bytes(png.tobytes())
    save_pair(inbox, "cmyk", scene(31), edit(scene(31)), ext=".jpg", mode="CMYK")
    save_pair(inbox, "grey", scene(32), edit(scene(32)), mode="L")
    save_pair(inbox, "palette", scene(33), edit(scene(33)), mode="P")
    save(inbox / "alpha_src.png", scene(34))
    save(inbox / "alpha_tar.png", edit(scene(34)), mode="RGBA")


def build_delivery(inbox: Path, stored_target: Path) -> None:
    """Good pairs, one pair per bad case, and pairs that need a pixel-format conversion.
    ``stored_target`` is a target already in the dataset, delivered again under a new id."""
    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        save_pair(inbox, f"new{i}", scene(i), edit(scene(i)))
    portrait = scene(3, (96, 128))  # a phone photo: sideways pixels + tag, edited upright
    save(inbox / "phone_src.jpg", np.ascontiguousarray(np.rot90(portrait, 1)), orientation=6)
    save(inbox / "phone_tar.jpg", edit(portrait))
    _bad_files(inbox)
    _bad_geometry(inbox, stored_target)
    _converted(inbox)


def quick_run_params(project: Path) -> None:
    """A pipeline that runs in minutes and always registers: few iterations, every gate floor
    open (these tests are about the plumbing, not the model)."""
    import yaml

    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["train"]["iterations"] = 5  # each CPU iteration of the default profile is about 1.3 s here
    # one model on a val split: these tests are about the plumbing; test_dvc_repro and test_small_set
    # run the small sets' default, cross-validation (3 more models to train, export and score)
    raw["lmdb"]["cross_validate_below"] = 0
    # and the gate's side measurements kept small: the other pooling and FP16 are measured in
    # test_dvc_repro and test_evaluate, the review page needs a photo or two
    raw["evaluate"].update({"compare_pooling": False, "variant_pairs": 2})
    raw["evaluate"]["review"]["photos"] = 2
    raw["export"]["fp16"] = False
    raw["evaluate"]["gate"].update({"min_psnr": 0.0, "min_ssim": 0.0, "min_psnr_gain_over_identity": -100.0,
                                    "min_psnr_gain_over_baseline": -100.0, "max_ciede2000_mean": 100.0,
                                    "max_contrast_over_identity": 100.0, "max_blown_highlights": 1.0,
                                    "max_cast_over_baseline": 100.0})
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
