"""The guided transfer that carries a working-size edit to full resolution."""
import numpy as np
import pytest

from components.config import InferenceSpec
from components.data.imageio import working_copy
from components.inference.modes import enhance
from components.inference.transfer import apply_local_affine, fit_local_affine, transfer_edit

MATRIX = np.array([[1.10, 0.05, 0.00], [0.02, 0.90, 0.05], [-0.03, 0.08, 0.85]], np.float32)
OFFSET = np.array([0.03, -0.01, 0.04], np.float32)


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus fine texture: detail that a working-size copy cannot hold."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.3 * np.sin(6 * x + 2 * y), 0.4 + 0.3 * np.cos(5 * y), 0.3 + 0.4 * x * y], -1)
    texture = rng.normal(0, 0.05, (h, w, 3))
    return (np.clip(base + texture, 0, 1) * 255 + 0.5).astype(np.uint8)


def colour_matrix(batch: np.ndarray) -> np.ndarray:
    """A 'network' whose edit is one global colour matrix: (N, 3, h, w) -> same."""
    return np.einsum("nchw,cd->ndhw", batch, MATRIX) + OFFSET[None, :, None, None]


def global_spec(size: int = 64, strip_rows: int = 256) -> InferenceSpec:
    return InferenceSpec(mode="global_view", working_size=size,
                         transfer={"radius": 4, "eps": 1e-3, "strip_rows": strip_rows})


def test_an_identity_edit_gives_the_input_back():
    full = photo(300, 420)
    small = working_copy(full, 64).astype(np.float32) / 255
    out = transfer_edit(full, small, small, radius=4, eps=1e-3)
    assert np.abs(out * 255 - full).max() < 0.01


def test_a_global_colour_matrix_made_small_is_reproduced_at_full_resolution():
    full = photo(333, 517, seed=1)
    out = enhance(full, colour_matrix, global_spec())
    expected = np.clip((full / 255.0) @ MATRIX + OFFSET, 0, 1)
    assert np.abs(out - expected).max() < 1 / 255


def test_a_local_edit_follows_the_region_it_was_made_in():
    full = photo(240, 320, seed=2)
    small = working_copy(full, 80).astype(np.float32) / 255
    edited = small.copy()
    edited[:, : small.shape[1] // 2] *= 0.5  # darken the left half only
    out = transfer_edit(full, small, edited, radius=2, eps=1e-3)
    left, right = out[:, :100] * 255, out[:, -100:] * 255
    assert abs(left.mean() - 0.5 * full[:, :100].mean()) < 2
    assert abs(right.mean() - full[:, -100:].mean()) < 2


@pytest.mark.parametrize("strip_rows", [1, 7, 64])
def test_strips_give_exactly_the_whole_image_result(strip_rows):
    full = photo(203, 311, seed=3)
    small = working_copy(full, 64).astype(np.float32) / 255
    coef = fit_local_affine(small, np.clip(small ** 0.7, 0, 1), radius=3, eps=1e-3)
    whole = apply_local_affine(full, coef, strip_rows=10_000)
    # equal up to float32 rounding (cv2 vectorises a one-row strip differently)
    assert np.abs(apply_local_affine(full, coef, strip_rows=strip_rows) - whole).max() < 1e-6


@pytest.mark.parametrize("shape", [(40, 30), (64, 64), (101, 77), (517, 333), (3, 5), (1, 1)])
def test_small_odd_and_portrait_photos_work(shape):
    full = photo(*shape, seed=4)
    out = enhance(full, colour_matrix, global_spec())
    assert out.shape == (*shape, 3) and out.dtype == np.float32
    expected = np.clip((full / 255.0) @ MATRIX + OFFSET, 0, 1)
    assert np.abs(out - expected).max() < 2 / 255


def test_float_and_uint8_photos_give_the_same_result():
    """Evaluation holds photos as float, serving as uint8: the gate scores what is served."""
    full = photo(150, 210, seed=5)
    spec = global_spec(48)
    run = lambda b: np.sqrt(b)  # noqa: E731
    assert np.array_equal(enhance(full, run, spec), enhance(full.astype(np.float32) / 255, run, spec))


def test_the_network_sees_the_whole_photo_once_at_working_size():
    seen = []

    def record(batch):
        seen.append(batch.shape)
        return batch

    enhance(photo(300, 450), record, global_spec(96))
    assert seen == [(1, 3, 64, 96)]


def test_a_model_returning_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        enhance(photo(50, 60), lambda b: b[:, :, :10], global_spec())
