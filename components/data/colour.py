"""One working colour space, sRGB: a photo's pixels are converted from its embedded ICC
profile (Display P3 from phones, Adobe RGB, CMYK) on decoding, everywhere a photo is read
(validation, LMDB, training, evaluation, serving), so the model learns and serves colours as a
colour-managed viewer shows them. Photos with no profile, or an sRGB one, are left as they are.

Also where HEIC/HEIF support is switched on (pillow-heif, registered on first use, not at import).
"""
from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms

# Colorants (D50-adapted XYZ) of a profile this close to sRGB's are sRGB; real sRGB profiles
# (HP's, Apple's "sRGB IEC61966-2.1", lcms's) differ in the fourth decimal.
SRGB_COLORANT_TOLERANCE = 0.002


@functools.cache
def register_heif() -> None:
    """Let Pillow open HEIC/HEIF (what iPhones save by default); once per process."""
    import pillow_heif

    pillow_heif.register_heif_opener()


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc() -> bytes:
    """The sRGB profile embedded in what is written after a conversion."""
    return srgb_profile().tobytes()


def _colorants(profile: ImageCms.ImageCmsProfile) -> list[float] | None:
    core = profile.profile
    colorants = (core.red_colorant, core.green_colorant, core.blue_colorant)
    if any(c is None for c in colorants):  # no colorant tags: a LUT-based or CMYK profile
        return None
    try:
        return [v for c in colorants if c is not None for v in c[0]]
    except (TypeError, IndexError):  # no colorant tags: a LUT-based or CMYK profile
        return None


def is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    ours, theirs = _colorants(srgb_profile()), _colorants(profile)
    if ours is None or theirs is None:
        return False
    return max(abs(a - b) for a, b in zip(ours, theirs, strict=False)) <= SRGB_COLORANT_TOLERANCE


def describe(profile: ImageCms.ImageCmsProfile) -> str:
    return (ImageCms.getProfileDescription(profile) or "unnamed profile").strip()


def to_srgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None, str | None]:
    """``img`` (mode RGB or CMYK) in sRGB: (image, profile to embed when writing, a note saying
    what was done, or None when nothing was). An unreadable profile is ignored, with a note."""
    if not icc or img.mode not in ("RGB", "CMYK"):
        return img, icc, None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if img.mode == "RGB" and is_srgb(profile):
            return img, icc, None
        name = describe(profile)
        converted = ImageCms.profileToProfile(img, profile, srgb_profile(), outputMode="RGB",
                                              renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
        if converted is None:  # Pillow returns None only in place, which is not asked for here
            raise ValueError("the conversion returned no image")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        return img, None, f"embedded ICC profile unreadable ({exc}); pixels taken as sRGB"
    return converted, srgb_icc(), f"colours converted from {name} to sRGB (embedded ICC profile)"
