from pathlib import Path

import numpy as np
import pytest

from components.data.lmdb_read import iter_lmdb
from components.data.pairs import Pair
from components.data.splits import assign_folds, hash_split, make_split, read_splits, split_of
from components.lmdb import run_lmdb
from tests.conftest import lmdb_paths, write_pair


def test_split_is_a_pure_function_of_the_id():
    ids = [f"pair{i}" for i in range(200)]
    first = {i: split_of(i, 0.25) for i in ids}
    # more data arrives: the old ids keep their split
    more = {i: split_of(i, 0.25) for i in ids + [f"new{i}" for i in range(500)]}
    assert all(more[i] == first[i] for i in ids)
    assert 0.1 < sum(s == "val" for s in first.values()) / len(ids) < 0.4


@pytest.mark.parametrize("n", [2, 3, 5, 10, 14, 20, 30])
def test_a_small_set_keeps_most_pairs_for_training_and_one_to_validate(n):
    for start in range(0, 400, 20):  # many sets of n ids, lumpy hashes included
        splits = hash_split([f"client{start + i}" for i in range(n)], 0.25, 0.7)
        assert 1 <= len(splits["val"]) <= max(1, int(0.3 * n))
        assert len(splits["train"]) + len(splits["val"]) == n


def test_at_scale_the_split_is_the_hash_split():
    ids = [f"photo{i}" for i in range(577)]
    val = set(hash_split(ids, 0.25, 0.7)["val"])
    assert val == {i for i in ids if split_of(i, 0.25) == "val"}
    # more pairs arrive: no training pair ever moves into val
    grown = set(hash_split(ids + [f"new{i}" for i in range(300)], 0.25, 0.7)["val"])
    assert grown & set(ids) == val


def test_one_pair_cannot_be_split():
    with pytest.raises(ValueError, match="at least 2"):
        make_split(["only"], 0.25, 0.7, 60, 3)


@pytest.mark.parametrize("n", [2, 3, 10, 14, 30, 59])
def test_a_small_set_cross_validates_with_every_pair_training_and_scored_once(n):
    ids = [f"client{i}" for i in range(n)]
    split = make_split(ids, 0.25, 0.7, 60, 3)
    assert split.cross_validated and sorted(split.train) == sorted(ids) == sorted(split.val)
    folds = split.folds
    assert len(folds) == min(3, n) and sorted(i for f in folds for i in f) == sorted(ids)  # each pair held out once
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for held in folds:  # each fold's model trains on the rest: with 10 pairs, every pair trains 2 of 3 models
        assert set(ids) - set(held) and not set(held) & (set(ids) - set(held))
    assert make_split(ids + [f"more{i}" for i in range(60 - n)], 0.25, 0.7, 60, 3).scheme == "hash"
    assert assign_folds(ids, 3) == folds  # a pure function of the ids


def test_the_split_record_is_typed_and_a_foreign_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="splits.json is missing"):
        read_splits(tmp_path / "splits.json")
    (tmp_path / "splits.json").write_text('{"train": ["a"], "val": ["b"]}')  # written before the schemes
    with pytest.raises(ValueError, match="splits.json is not a split record"):
        read_splits(tmp_path / "splits.json")


def test_cross_validation_writes_each_fold_as_its_own_layout(pair_folder, params, tmp_path):
    out = tmp_path / "lmdb"
    result = run_lmdb(params.lmdb.model_copy(update={"cross_validate_below": 60}), lmdb_paths(pair_folder, out))
    split = read_splits(out / "splits.json")
    assert result["scheme"] == "cross_validation" and result["folds"] == [4, 4, 4]
    keys = {name: set(dict(iter_lmdb(out / name / "gt.lmdb"))) for name in ("train", "train_whole", "val")}
    assert keys["train"] == keys["train_whole"] == keys["val"] and len(keys["val"]) == 12
    for i, held in enumerate(split.folds):
        fold = out / "folds" / str(i)
        val, train = set(dict(iter_lmdb(fold / "val" / "gt.lmdb"))), set(dict(iter_lmdb(fold / "train_whole" / "gt.lmdb")))
        assert val == set(held) and train == keys["val"] - val == set(dict(iter_lmdb(fold / "train" / "gt.lmdb")))


def test_basicsr_reads_the_lmdb_unchanged(pair_folder: Path, params, tmp_path: Path):
    from basicsr.data.paired_image_dataset import PairedImageDataset

    out = tmp_path / "lmdb"
    result = run_lmdb(params.lmdb, lmdb_paths(pair_folder, out))
    counts = result["images"]
    assert result["pairs"] == {"train": 10, "val": 2} and counts == {"train": 10, "train_whole": 10, "val": 2}
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
    run_lmdb(params.lmdb, lmdb_paths(folder, tmp_path / "lmdb"))
    key, img = next(iter(dict(iter_lmdb(tmp_path / "lmdb" / "val" / "gt.lmdb")).items()))
    original = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(folder / f"{key}_tar.png"))
    np.testing.assert_allclose(img, original / 255.0, atol=1e-6)


def _big_pairs(folder, shapes):
    from PIL import Image

    for i, (h, w) in enumerate(shapes):
        yy, xx = np.mgrid[0:h, 0:w]
        target = np.stack([(yy * 7 + xx * 3) % 256, (yy * 5) % 256, (xx * 11) % 256], -1).astype(np.uint8)
        Image.fromarray(target).save(folder / f"b{i}_tar.png")
        Image.fromarray(target // 2).save(folder / f"b{i}_src.png")


def test_train_and_val_photos_stay_whole_as_their_own_bytes(tmp_path, params):
    """Full-size photos are not re-encoded: the train and val LMDBs cost what the photos cost."""
    from PIL import Image

    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        photo = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
        Image.fromarray(photo).save(folder / f"b{i}_tar.jpg", quality=90)
        Image.fromarray(photo // 2).save(folder / f"b{i}_src.jpg", quality=90)
    result = run_lmdb(params.lmdb.model_copy(update={"val_fraction": 0.3}), lmdb_paths(folder, tmp_path / "lmdb"))
    assert result["images"] == {"train": result["pairs"]["train"], "train_whole": result["pairs"]["train"],
                                "val": result["pairs"]["val"]}
    photo_bytes = sum(f.stat().st_size for f in folder.iterdir())
    stored = sum(f.stat().st_size for split in ("train", "val") for f in (tmp_path / "lmdb" / split).rglob("data.mdb"))
    assert photo_bytes <= stored < photo_bytes * 1.1 + 4 * 16384  # the photos, plus LMDB's pages
    for split in ("train", "val"):
        for role, suffix in (("lq", "src"), ("gt", "tar")):
            env = __import__("lmdb").open(str(tmp_path / "lmdb" / split / f"{role}.lmdb"), readonly=True, lock=False)
            with env.begin() as txn:
                for key, value in txn.cursor():
                    assert value == (folder / f"{key.decode()}_{suffix}.jpg").read_bytes()
            env.close()
    assert not (tmp_path / "lmdb" / "train.tmp").exists()


def test_real_listing_photos_at_full_resolution(tmp_path, params):
    from PIL import Image

    from tests.conftest import shared_or_skip

    src = shared_or_skip("real-inputs")
    folder = tmp_path / "pairs"
    folder.mkdir()
    photos = sorted(src.glob("*.jpg"))[:3]
    for p in photos:  # real photo as the target, a darker copy as the input
        Image.open(p).save(folder / f"{p.stem}_tar.jpg", quality=95)
        Image.eval(Image.open(p), lambda v: v // 2).save(folder / f"{p.stem}_src.jpg", quality=95)
    cfg = params.lmdb.model_copy(update={"val_fraction": 0.5})
    ids = [p.stem for p in photos]
    if len({split_of(i, 0.5) for i in ids}) < 2:
        pytest.skip("these photo ids all hash into one split")
    result = run_lmdb(cfg, lmdb_paths(folder, tmp_path / "lmdb"))
    val = dict(iter_lmdb(tmp_path / "lmdb" / "val" / "gt.lmdb"))
    assert all(img.shape[0] * img.shape[1] > 7_000_000 for img in val.values())
    assert result["images"]["train"] == result["pairs"]["train"]
    train = dict(iter_lmdb(tmp_path / "lmdb" / "train" / "gt.lmdb"))
    assert all(img.shape[0] * img.shape[1] > 7_000_000 for img in train.values())


def test_only_pairs_validation_accepted_are_written(pair_folder, tmp_path, params):
    from components.errors import StageFailed

    accepted = [f"p{i:02d}" for i in range(12) if i != 3]  # p03 quarantined; its files stay in the folder
    result = run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb", accepted))
    assert sum(result["pairs"].values()) == 11
    splits = __import__("json").loads((tmp_path / "lmdb" / "splits.json").read_text())
    assert "p03" not in splits["train"] + splits["val"] and (pair_folder / "p03_src.png").exists()
    with pytest.raises(StageFailed, match="run the validate stage again"):
        run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb2", accepted + ["gone"]))


def test_the_same_pairs_and_params_give_byte_identical_lmdbs(pair_folder, tmp_path, params):
    import hashlib

    def digest(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "a"))
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "b"))
    first = digest(tmp_path / "a")
    assert first == digest(tmp_path / "b")  # so DVC sees an unchanged output and nothing downstream re-runs
    assert not any(name.endswith("lock.mdb") for name in first)
    assert len(dict(iter_lmdb(tmp_path / "a" / "val" / "gt.lmdb"))) >= 1  # and it still reads without its lock file


def test_whole_photos_keep_their_own_bytes_unless_opencv_would_decode_them_differently(tmp_path, params):
    """A val JPEG goes in as itself (no PNG several times its size); a photo whose pixels OpenCV
    would not reproduce (here: alpha, flattened onto white by validation's rules) goes in as PNG
    of the accepted pixels. Either way, readers get exactly what validation accepted."""
    from PIL import Image

    from components.data.imageio import load_rgb
    from components.lmdb import pair_records

    rng = np.random.default_rng(0)
    photo = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "a_src.jpg", quality=90)
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a_tar.png")
    key, lq, gt, shape = pair_records(Pair("a", tmp_path / "a_src.jpg", tmp_path / "a_tar.png"),
                                      params.lmdb, ("whole",), 60_000_000)["whole"]
    assert lq == (tmp_path / "a_src.jpg").read_bytes() and shape == (120, 160, 3)
    assert gt[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = __import__("cv2").imdecode(np.frombuffer(gt, np.uint8), 1)[..., ::-1]
    np.testing.assert_array_equal(decoded, load_rgb(tmp_path / "a_tar.png", flatten_alpha=True))
