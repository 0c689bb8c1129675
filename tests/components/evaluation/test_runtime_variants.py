"""The FP16 ONNX and the other pooling are scored on a sample of val pairs, and compared with
the served model on exactly those pairs."""
import pytest

from components.evaluation.runtime_variants import variant_results, variant_sample
from components.lmdb import run_lmdb
from tests.conftest import lmdb_paths


def test_variants_are_compared_on_the_pairs_they_were_scored_on(params):
    rows = [{"image": "a", "psnr": 30.0, "fp16_psnr": 29.8, "tlc_pooling_psnr": 30.5},
            {"image": "b", "psnr": 20.0, "fp16_psnr": 20.0, "tlc_pooling_psnr": 20.1},
            {"image": "c", "psnr": 10.0}]  # outside the sample: only the served model ran
    out = variant_results(rows, "global", params.evaluate)
    assert out["fp16_loss_db"] == pytest.approx(0.1) and out["variant_pairs"] == 2
    assert out["tlc_gain_db"] == pytest.approx(0.3)  # TLC (not served) scores higher on the same pairs
    assert variant_results(rows, "tlc", params.evaluate)["tlc_gain_db"] == pytest.approx(-0.3)
    assert out["fp16_ok"] is False  # over the 0.05 dB limit


def test_the_sample_is_the_first_pairs_of_the_val_split(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb.model_copy(update={"val_fraction": 0.5, "min_train_share": 0.4}),
             lmdb_paths(pair_folder, tmp_path / "lmdb"))
    keys = (tmp_path / "lmdb" / "val" / "gt.lmdb" / "meta_info.txt").read_text().split()
    val = [k.split(".")[0] for k in keys[::3]]
    assert len(val) >= 3
    assert variant_sample(tmp_path / "lmdb", 2) == frozenset(val[:2])
    assert variant_sample(tmp_path / "lmdb", 0) is None and variant_sample(tmp_path / "lmdb", len(val)) is None
