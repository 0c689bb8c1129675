import numpy as np
import pytest

from components.inference.tiling import blend_window, enhance_tiled, iter_tiles, tile_starts


def affine(batch: np.ndarray) -> np.ndarray:
    return batch * 0.5 + 0.25


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (64, 64, 8), (20, 64, 8), (257, 128, 16)])
def test_tiles_cover_every_pixel_within_bounds(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s and s + size <= length
        covered[s : s + size] = True
    assert covered.all()


def test_overlap_must_be_smaller_than_tile():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)


@pytest.mark.parametrize("shape", [(37, 53), (200, 130), (64, 64)])
def test_pixelwise_model_gives_the_same_result_tiled_or_whole(shape):
    img = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    tiled = enhance_tiled(img, affine, tile=32, overlap=8, batch=3)
    np.testing.assert_allclose(tiled, img * 0.5 + 0.25, atol=1e-6)


def test_tiles_are_batched_up_to_the_batch_size():
    sizes = []

    def record(batch):
        sizes.append(batch.shape[0])
        return batch

    img = np.zeros((100, 100, 3), np.uint8)
    enhance_tiled(img, record, tile=32, overlap=8, batch=4)
    n_tiles = len(list(iter_tiles(100, 100, 32, 8)))
    assert sum(sizes) == n_tiles and max(sizes) == 4 and len(sizes) == -(-n_tiles // 4)


def test_seams_blend_smoothly():
    # A model that adds a per-tile constant: blended output must change gradually.
    calls = iter(range(1000))

    def per_tile_offset(batch):
        return np.stack([t * 0 + 0.1 * (next(calls) % 2) for t in batch])

    out = enhance_tiled(np.zeros((32, 96, 3), np.float32), per_tile_offset, tile=32, overlap=16, batch=1)
    assert np.abs(np.diff(out[..., 0], axis=1)).max() < 0.1 / 4


def test_window_is_positive_everywhere():
    assert blend_window(16, 40, 8).min() > 0


def test_wrong_output_shape_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        enhance_tiled(np.zeros((40, 40, 3), np.float32), lambda b: b[:, :, :10], tile=32, overlap=8, batch=2)
