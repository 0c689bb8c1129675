"""Build the bundled, licence-clean sample dataset (run once; the result is DVC-tracked).

Targets are public-domain / CC0 photos that scikit-image ships (NASA's astronaut, rocket and
Hubble images; the CC0 coffee and cat photos), cropped to landscape and portrait frames of
mixed sizes. Inputs simulate an amateur capture of the same scene, seeded per pair:

1. under-exposure by 0.6-1.3 EV, applied in linear light;
2. compressed dynamic range: lifted blacks and rolled-off highlights (flat phone look);
3. a white-balance cast (warm or cool channel gains up to +-12 %);
4. a little optical blur (Gaussian, sigma 0.4-0.9) and sensor noise (sigma 0.5-1.5 %);
5. JPEG compression at quality 70-85.
The edit the model must learn is therefore the inverse: exposure, contrast, white balance,
mild sharpening and denoising, which is what a retoucher does for a listing photo.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# (name, skimage.data loader, crops as (top, left, height, width) fractions)
SOURCES = {
    "astronaut": ((0.0, 0.0, 1.0, 1.0), (0.0, 0.1, 1.0, 0.6), (0.3, 0.0, 0.6, 1.0)),
    "coffee": ((0.0, 0.0, 1.0, 1.0), (0.0, 0.2, 1.0, 0.5), (0.2, 0.0, 0.6, 0.8)),
    "chelsea": ((0.0, 0.0, 1.0, 1.0), (0.0, 0.3, 1.0, 0.5)),
    "rocket": ((0.0, 0.0, 1.0, 1.0), (0.0, 0.25, 1.0, 0.5), (0.4, 0.0, 0.6, 1.0)),
    "hubble_deep_field": ((0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.55)),
    "immunohistochemistry": ((0.0, 0.0, 1.0, 1.0),),
}


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def degrade(target: np.ndarray, seed: int) -> bytes:
    """Simulate an amateur capture of ``target`` (uint8 RGB); returns JPEG bytes."""
    rng = np.random.default_rng(seed)
    lin = _srgb_to_linear(target.astype(np.float64) / 255.0)
    lin *= 2.0 ** -rng.uniform(0.6, 1.3)
    lin *= 1.0 + rng.uniform(-0.12, 0.12, size=3) * np.array([1.0, 0.3, -1.0])
    x = _linear_to_srgb(lin)
    x = 0.06 + 0.86 * (x - 0.12 * x * (1 - x))  # lifted blacks, soft highlight roll-off
    img = Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    noisy = np.asarray(img, np.float64) + rng.normal(0, 255 * rng.uniform(0.005, 0.015), target.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(70, 86)))
    return buf.getvalue()


def _crop(img: np.ndarray, frac: tuple[float, float, float, float]) -> np.ndarray:
    h, w = img.shape[:2]
    top, left, fh, fw = frac
    y, x = int(top * h), int(left * w)
    return img[y : y + int(fh * h), x : x + int(fw * w)]


def build_sample(out_dir: str | Path) -> list[str]:
    """Write ``<id>_src.jpg`` / ``<id>_tar.jpg`` pairs into ``out_dir``; returns the ids."""
    from skimage import data as skdata

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    for name, crops in SOURCES.items():
        photo = np.asarray(getattr(skdata, name)())[..., :3]
        for k, frac in enumerate(crops):
            pair_id = f"{name}_{k}"
            target = np.ascontiguousarray(_crop(photo, frac))
            Image.fromarray(target).save(out / f"{pair_id}_tar.jpg", "JPEG", quality=95)
            (out / f"{pair_id}_src.jpg").write_bytes(degrade(target, seed=len(ids) + 1))
            ids.append(pair_id)
    return ids
