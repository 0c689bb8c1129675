from pathlib import Path

import numpy as np

from components.lmdb import LmdbPaths, read_lmdb, run_lmdb, split_of
from components.nafnet_arch import register_nafnet  # noqa: F401  (BasicSR import side effects)
from tests.conftest import write_pair


def test_split_is_a_pure_function_of_the_id():
    ids = [f"pair{i}" for i in range(200)]
    first = {i: split_of(i, 0.25) for i in ids}
    # more data arrives: the old ids keep their split
    more = {i: split_of(i, 0.25) for i in ids + [f"new{i}" for i in range(500)]}
    assert all(more[i] == first[i] for i in ids)
    assert 0.1 < sum(s == "val" for s in first.values()) / len(ids) < 0.4


def test_basicsr_reads_the_lmdb_unchanged(pair_folder: Path, params, tmp_path: Path):
    from basicsr.data.paired_image_dataset import PairedImageDataset

    out = tmp_path / "lmdb"
    counts = run_lmdb(params.lmdb, LmdbPaths(pair_folder, out))
    assert counts == {"train": 10, "val": 2}
    for split, phase in (("train", "train"), ("val", "val")):
        ds = PairedImageDataset({
            "phase": phase, "scale": 1, "gt_size": 32, "use_hflip": False, "use_rot": False,
            "dataroot_lq": str(out / split / "lq.lmdb"), "dataroot_gt": str(out / split / "gt.lmdb"),
            "io_backend": {"type": "lmdb"}, "filename_tmpl": "{}",
        })
        assert len(ds) == counts[split]
        item = ds[0]
        assert item["lq"].shape[0] == 3 and item["lq"].shape == item["gt"].shape
        if phase == "val":
            # input was written as target * 0.6: the pair survived the round trip, in RGB order
            ratio = item["lq"].mean() / item["gt"].mean()
            assert 0.55 < ratio < 0.65
    meta = (out / "val" / "gt.lmdb" / "meta_info.txt").read_text().splitlines()
    assert all(line.endswith(f" {params.lmdb.png_compression}") and ".png (" in line for line in meta)


def test_rgb_order_is_kept(tmp_path, params):
    folder = tmp_path / "pairs"
    for i in range(12):
        write_pair(folder, f"q{i}", seed=i)
    run_lmdb(params.lmdb, LmdbPaths(folder, tmp_path / "lmdb"))
    key, img = next(iter(read_lmdb(tmp_path / "lmdb" / "val" / "gt.lmdb").items()))
    original = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(folder / f"{key}_tar.png"))
    np.testing.assert_allclose(img, original / 255.0, atol=1e-6)
