"""Carry an edit made on a small copy of a photo to the full-resolution photo.

A retoucher's edit is a smooth colour transform, so it is described by a few numbers per
neighbourhood: at working resolution we fit, around every pixel, the 3x4 affine colour
transform that maps the input's colours to the edited colours (a colour guided filter,
He et al. 2010/2015), smooth those coefficients, upsample them bilinearly and apply them
to every full-resolution pixel. Fine detail comes from the full-resolution input itself;
only the colour change comes from the small edit.

Two choices differ from the textbook guided filter:
- The local fit is regularised toward the photo's own global affine colour transform, not
  toward zero. In flat regions (where the local fit is ill-posed) the edit falls back to the
  global colour change instead of to a blur, so an identity edit returns the input exactly
  and a global colour-matrix edit is reproduced exactly at any resolution.
- The full-resolution side runs in strips of rows (``strip_rows``), so memory stays bounded
  by the strip, not the photo; the result does not depend on the strip height.
"""
from __future__ import annotations

import cv2
import numpy as np

from components.inference.tiling import to_uint8

GLOBAL_RIDGE = 1e-6  # keeps the global fit defined on a flat (single-colour) photo


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, per channel, reflecting at the borders."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def _with_ones(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.ones((*rgb.shape[:-1], 1), rgb.dtype)], axis=-1)


def fit_global_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(4, 3) matrix M with ``[rgb, 1] @ M`` ~ dst, least squares, lightly pulled to identity."""
    f = _with_ones(src.reshape(-1, 3).astype(np.float64))
    y = dst.reshape(-1, 3).astype(np.float64)
    n = len(f)
    ridge = GLOBAL_RIDGE * np.diag([1.0, 1.0, 1.0, 0.0])
    prior = np.vstack([np.eye(3), np.zeros((1, 3))])
    return np.linalg.solve(f.T @ f / n + ridge, f.T @ y / n + ridge @ prior)


def _solve_sym3(m: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Per-pixel ``m^-1 @ rhs`` for symmetric positive-definite 3x3 ``m`` (h, w, 3, 3), by the
    adjugate: an order of magnitude faster than a batched LAPACK solve at this size."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 1], m[..., 1, 2], m[..., 2, 2]
    inv = np.stack([d * f - e * e, c * e - b * f, b * e - c * d,
                    c * e - b * f, a * f - c * c, b * c - a * e,
                    b * e - c * d, b * c - a * e, a * d - b * b], axis=-1).reshape(m.shape)
    det = a * inv[..., 0, 0] + b * inv[..., 1, 0] + c * inv[..., 2, 0]
    return (inv @ rhs) / det[..., None, None]


def fit_local_affine(src: np.ndarray, dst: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Per-pixel (h, w, 4, 3) affine colour transforms taking ``src`` to ``dst`` (both HxWx3
    float in [0, 1], same size): the global fit plus a local correction over a (2r+1)^2
    window with ridge ``eps``, then averaged over the same window (guided filter)."""
    if src.shape != dst.shape or src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"expected two HxWx3 images of one size, got {src.shape} and {dst.shape}")
    h, w = src.shape[:2]
    radius = max(0, min(radius, (min(h, w) - 1) // 2))
    g = fit_global_affine(src, dst)
    src = src.astype(np.float64)
    resid = dst.astype(np.float64) - _with_ones(src) @ g  # what the global transform misses
    # all window means in one box filter: I, p, I_i*I_j and I_i*p_o
    products = np.concatenate([src, resid, (src[..., :, None] * src[..., None, :]).reshape(h, w, 9),
                               (src[..., :, None] * resid[..., None, :]).reshape(h, w, 9)], axis=-1)
    means = _box(products, radius)
    mean_i, mean_p = means[..., 0:3], means[..., 3:6]
    cov_ii = means[..., 6:15].reshape(h, w, 3, 3) - mean_i[..., :, None] * mean_i[..., None, :]
    cov_ip = means[..., 15:24].reshape(h, w, 3, 3) - mean_i[..., :, None] * mean_p[..., None, :]
    a = _solve_sym3(cov_ii + eps * np.eye(3), cov_ip)  # (h, w, 3 in, 3 out)
    b = mean_p - (mean_i[..., None, :] @ a)[..., 0, :]
    local = np.concatenate([a, b[..., None, :]], axis=-2).reshape(h, w, 12)
    smooth = _box(local, radius).reshape(h, w, 4, 3)
    return (smooth + g).astype(np.float32)


def _linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights for resizing n_in -> n_out (pixel centres aligned)."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def apply_local_affine(image: np.ndarray, coef: np.ndarray, strip_rows: int = 256,
                       out_dtype: type = np.float32) -> np.ndarray:
    """``image`` (HxWx3, uint8 or float in [0, 1]) with the (h, w, 4, 3) transforms from
    ``fit_local_affine`` upsampled bilinearly to HxW, built strip by strip: float32 in
    [0, 1], or uint8 rounded as ``tiling.to_uint8`` does (no full-size float copy)."""
    big_h, big_w = image.shape[:2]
    h = coef.shape[0]
    y0, y1, fy = _linear_taps(big_h, h)
    scale = np.float32(1 / 255) if image.dtype == np.uint8 else np.float32(1)
    out: np.ndarray = np.empty((big_h, big_w, 3), out_dtype)
    for top in range(0, big_h, strip_rows):
        rows = slice(top, min(big_h, top + strip_rows))
        wy = fy[rows, None, None, None]
        # this strip's rows of coefficients (cheap, at low width), then along x to full width:
        # cv2.resize with an unchanged height only interpolates along x
        c = coef[y0[rows]] * (1 - wy) + coef[y1[rows]] * wy  # (n, w, 4, 3)
        n = c.shape[0]
        planes = [cv2.resize(np.ascontiguousarray(c[:, :, k]), (big_w, n), interpolation=cv2.INTER_LINEAR)
                  for k in range(4)]
        px = image[rows].astype(np.float32)
        px *= scale
        res: np.ndarray = planes[3]
        tmp = np.empty_like(res)
        for k in range(3):
            np.multiply(planes[k], px[..., k : k + 1], out=tmp)
            res += tmp
        np.clip(res, 0.0, 1.0, out=res)
        out[rows] = res if out.dtype != np.uint8 else to_uint8(res)
    return out


def transfer_edit(full: np.ndarray, small_in: np.ndarray, small_out: np.ndarray, radius: int, eps: float,
                  strip_rows: int = 256, out_dtype: type = np.float32) -> np.ndarray:
    """The full-resolution ``full`` with the edit ``small_in -> small_out`` applied to it."""
    return apply_local_affine(full, fit_local_affine(small_in, small_out, radius, eps), strip_rows, out_dtype)
