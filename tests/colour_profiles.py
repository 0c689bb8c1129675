"""A Display P3 ICC profile written from its definition, and the same conversion done by hand.

Pillow's LittleCMS can only create sRGB and Lab profiles, and no P3 profile ships with the
machine, so tests build one (ICC v2 matrix/TRC: P3 primaries, D65 white, the sRGB curve) the
way Apple's "Display P3" is defined, and check LittleCMS's conversion against plain matrix
maths (``p3_to_srgb``).
"""
from __future__ import annotations

import struct

import numpy as np

P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
SRGB_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The 3x3 matrix from linear RGB to XYZ for these primaries and white point."""
    prim = np.stack([_xyz(*p) for p in primaries], axis=1)
    return prim * np.linalg.solve(prim, _xyz(*white))


def _to_d50(matrix: np.ndarray) -> np.ndarray:
    src, dst = BRADFORD @ _xyz(*D65), BRADFORD @ D50_XYZ
    return np.linalg.inv(BRADFORD) @ np.diag(dst / src) @ BRADFORD @ matrix


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def p3_to_srgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 Display P3 pixels in sRGB (uint8, clipped), by the colorimetric definition."""
    linear = srgb_decode(rgb.astype(np.float64) / 255.0)
    matrix = np.linalg.inv(rgb_to_xyz(SRGB_PRIMARIES)) @ rgb_to_xyz(P3_PRIMARIES)
    return np.round(srgb_encode(linear @ matrix.T) * 255).astype(np.uint8)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 8 + b"\0" * 3 + b"\0" * 67


def _curve_tag() -> bytes:
    table = np.round(srgb_decode(np.linspace(0, 1, 1024)) * 65535).astype(">u2")
    return b"curv\0\0\0\0" + struct.pack(">I", len(table)) + table.tobytes()


def display_p3_icc(description: str = "Display P3") -> bytes:
    """An ICC v2 display profile for Display P3."""
    colorants = _to_d50(rgb_to_xyz(P3_PRIMARIES))
    curve = _curve_tag()
    tags = [(b"desc", _desc_tag(description)), (b"wtpt", _xyz_tag(D50_XYZ)),
            (b"rXYZ", _xyz_tag(colorants[:, 0])), (b"gXYZ", _xyz_tag(colorants[:, 1])),
            (b"bXYZ", _xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0no copyright, test profile\0")]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + b"\0" * 4 + b"".join(_s15(v) for v in D50_XYZ) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
