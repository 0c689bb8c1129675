"""What a retoucher checks before sending an edit back, measured against the professional edit.

PSNR averages everything into one number and hides the failures a client sees first. Per
photo, each against the target of the same photo:

- **blown highlights**: the share of output pixels blown to white (every channel at least
  ``WHITE_LEVEL``: no detail left) where the target kept visible detail (some channel under
  ``KEPT_LEVEL``): windows the retoucher pulled and the model blew out. One channel clipping
  in a saturated colour (an orange suit's red) is not a blown highlight. Customers ask for
  under 0.1%. At full resolution: a window is small.
- **contrast error**: how far the output's luminance spread (CIE L*, 95th minus 5th
  percentile) is from the target's, in L* units. Washed-out edits (grey blacks, flat
  midtones) have a spread well under the retoucher's.
- **colour cast**: on the surfaces the retoucher left near-white (target chroma under
  ``NEUTRAL_CHROMA``, lightness over ``NEUTRAL_LIGHTNESS``: walls, ceilings), the length of
  the mean (a*, b*) difference between output and target. A consistent tint there (pink
  walls) is a cast; pixel noise in either direction averages out. A photo without such
  surfaces (under ``MIN_NEUTRAL_SHARE`` of it) has no measurable cast and scores 0 for every
  method, so it does not move comparisons.

Contrast and cast are measured on area-averaged copies (long side ``MEASURE_SIDE``): both are
statistics over large regions, and L*a*b* at 7 MP costs seconds.
"""
from __future__ import annotations

import numpy as np

from components.data.imageio import working_copy

WHITE_LEVEL = 250 / 255      # every channel at or over this: white, no detail
KEPT_LEVEL = 240 / 255       # a target channel under this shows detail a viewer sees
NEUTRAL_CHROMA = 6.0         # C*ab: "white" walls in real edits sit around 1-4
NEUTRAL_LIGHTNESS = 60.0     # L*: near-white surfaces, not grey shadows
MIN_NEUTRAL_SHARE = 0.002
MEASURE_SIDE = 512
SPREAD = (5, 95)             # percentiles of L* whose difference is the contrast


def blown_highlights(out: np.ndarray, target: np.ndarray) -> float:
    """Share of pixels blown to white in the output but not in the target (float RGB in [0, 1])."""
    blown = 0
    for a in range(0, out.shape[0], 256):
        clipped = out[a:a + 256].min(axis=2) >= WHITE_LEVEL
        kept = target[a:a + 256].min(axis=2) < KEPT_LEVEL
        blown += int(np.count_nonzero(clipped & kept))
    return blown / (out.shape[0] * out.shape[1])


def lab(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of a float RGB image, on its area-averaged copy."""
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(working_copy(image, MEASURE_SIDE), 0, 1))


def contrast(lab_image: np.ndarray) -> float:
    lo, hi = np.percentile(lab_image[..., 0], SPREAD)
    return float(hi - lo)


def neutral_mask(target_lab: np.ndarray) -> np.ndarray | None:
    """The target's near-white surfaces, or None where the photo has too few of them."""
    chroma = np.hypot(target_lab[..., 1], target_lab[..., 2])
    mask = (chroma < NEUTRAL_CHROMA) & (target_lab[..., 0] > NEUTRAL_LIGHTNESS)
    return mask if mask.mean() >= MIN_NEUTRAL_SHARE else None


def colour_cast(lab_image: np.ndarray, target_lab: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is None:
        return 0.0
    shift = lab_image[mask][:, 1:].mean(axis=0) - target_lab[mask][:, 1:].mean(axis=0)
    return float(np.hypot(*shift))


class TargetLook:
    """The target's measurements, computed once per pair and compared with each candidate."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target
        self.lab = lab(target)
        self.contrast = contrast(self.lab)
        self.mask = neutral_mask(self.lab)

    def checks(self, image: np.ndarray, prefix: str = "") -> dict[str, float]:
        """``<prefix>blown_highlights``, ``<prefix>contrast_error`` and ``<prefix>cast`` of an edit."""
        image_lab = lab(image)
        return {f"{prefix}blown_highlights": blown_highlights(image, self.target),
                f"{prefix}contrast_error": abs(contrast(image_lab) - self.contrast),
                f"{prefix}cast": colour_cast(image_lab, self.lab, self.mask)}
