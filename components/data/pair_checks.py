"""Cheap measurements that tell whether a target is really an edit of its input."""
from __future__ import annotations

import numpy as np
from PIL import Image


def _grey_small(rgb: np.ndarray, long_side: int) -> np.ndarray:
    img = Image.fromarray(rgb).convert("L")
    scale = long_side / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(img, np.float64)


def alignment_score(inp: np.ndarray, tar: np.ndarray, long_side: int = 128) -> float | None:
    """Normalised cross-correlation of downscaled gradient magnitudes, in [-1, 1].

    Tone, colour and exposure edits keep edges where they were (score near 1); swapped
    files, crops and other shots do not (score near 0). Gradients, not pixels, so a strong
    global edit does not look like a mismatch. None for a flat image: nothing to compare.
    """
    grads = []
    for img in (inp, tar):
        gy, gx = np.gradient(_grey_small(img, long_side))
        g = np.hypot(gx, gy)
        if g.std() < 1e-6:
            return None
        grads.append((g - g.mean()) / g.std())
    if grads[0].shape != grads[1].shape:
        return 0.0
    return float(np.mean(grads[0] * grads[1]))


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash: survives re-encoding, resizing and mild edits."""
    img = Image.fromarray(rgb).convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    px = np.asarray(img, np.int16)
    bits = (px[:, 1:] > px[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def near_duplicates(hashes: dict[str, int], max_distance: int, known: dict[str, int] | None = None
                    ) -> dict[str, str]:
    """{pair_id: the pair it duplicates}: a ``known`` one (already stored), else an earlier id.

    Dropping all but one of each group also keeps one photo from landing in both train and
    val, whatever splits the ids hash to."""
    seen: list[tuple[str, int]] = sorted((known or {}).items())
    dupes = {}
    for pair_id in sorted(hashes):
        h = hashes[pair_id]
        match = next((other for other, oh in seen if bin(h ^ oh).count("1") <= max_distance), None)
        if match:
            dupes[pair_id] = match
        else:
            seen.append((pair_id, h))
    return dupes
