import random

import numpy as np
import pytest
from PIL import Image

from components.data.photo_crops import PhotoCropDataset, random_patch
from components.lmdb import run_lmdb
from tests.conftest import lmdb_paths


def _graded_pairs(folder, n: int, size=(200, 150)):
    """Targets with a unique value per pixel position; inputs exactly half of them."""
    folder.mkdir(parents=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        target = np.stack([(yy + i) % 256, xx % 256, (yy * 3 + xx * 7) % 256], -1).astype(np.uint8)
        Image.fromarray(target).save(folder / f"g{i}_tar.png")
        Image.fromarray(target // 2).save(folder / f"g{i}_src.png")


@pytest.fixture
def train_split(tmp_path, params):
    _graded_pairs(tmp_path / "pairs", 6)
    run_lmdb(params.lmdb, lmdb_paths(tmp_path / "pairs", tmp_path / "lmdb"))
    return tmp_path / "lmdb" / "train"


def _dataset(split, size: int, crops: int) -> PhotoCropDataset:
    return PhotoCropDataset({"dataroot_lq": str(split / "lq.lmdb"), "dataroot_gt": str(split / "gt.lmdb"),
                             "gt_size": size, "crops_per_photo": crops})


def test_each_item_is_one_photos_patches_input_and_target_aligned(train_split):
    ds = _dataset(train_split, 48, 3)
    assert len(ds) == len((train_split / "gt.lmdb" / "meta_info.txt").read_text().splitlines())
    random.seed(0)
    for index in range(len(ds)):
        item = ds[index]
        assert item["lq"].shape == item["gt"].shape == (3, 3, 48, 48)
        # the input is the target halved, pixel for pixel, through every crop, flip and transpose
        np.testing.assert_allclose(item["lq"].numpy(), np.floor(item["gt"].numpy() * 255 / 2) / 255, atol=1e-6)
        assert len({p.numpy().tobytes() for p in item["gt"]}) == 3  # different places, not one patch thrice


def test_patches_come_from_anywhere_in_the_photo():
    gt = np.arange(100 * 120, dtype=np.int64).reshape(100, 120, 1).repeat(3, -1)
    lq = gt.copy()
    random.seed(1)
    corners = set()
    for _ in range(400):
        _, patch = random_patch(lq, gt.astype(np.float32) * 255, 20)
        corners.add(float(patch[..., 0].min()))  # the top-left pixel's index, whatever the flips
    rows = {int(c) // 120 for c in corners}
    cols = {int(c) % 120 for c in corners}
    assert min(rows) == 0 and max(rows) == 80 and min(cols) == 0 and max(cols) == 100


def test_photos_smaller_than_the_patch_are_named(train_split):
    with pytest.raises(ValueError, match=r"smaller than the 160 px patch \(train.patch_size; e.g. g"):
        _dataset(train_split, 160, 1)


def test_a_photo_is_decoded_once_per_item_whatever_the_patches(train_split, monkeypatch):
    ds = _dataset(train_split, 32, 8)
    reads = []
    original = ds.pairs.read
    monkeypatch.setattr(ds.pairs, "read", lambda key: reads.append(key) or original(key))
    ds[0], ds[1]
    assert reads == ds.pairs.keys[:2]
