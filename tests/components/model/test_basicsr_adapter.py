"""The training loop's batches: what BasicSR's model is fed, per mode."""
import pytest

from components.lmdb import run_lmdb
from components.model import basicsr_adapter, basicsr_options
from components.model.distributed import Ranks
from tests.conftest import in_mode, lmdb_paths


@pytest.mark.parametrize("crops", [1, 2, 4])
def test_a_tiled_batch_is_batch_size_patches_from_batch_size_over_crops_photos(pair_folder, params, tmp_path, crops):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    cfg = in_mode(params.train, "tiled").model_copy(update={"batch_size": 4, "patch_size": 32, "crops_per_photo": crops})
    opt = basicsr_options.build_options(cfg, tmp_path / "lmdb", tmp_path / "out", "cpu")
    basicsr_adapter.register_with_basicsr()
    loader, sampler = basicsr_adapter._loader(opt, Ranks())
    batch = next(basicsr_adapter._batches(loader, sampler, 0))
    assert batch["lq"].shape == batch["gt"].shape == (4, 3, 32, 32)
    assert len(set(batch["lq_path"])) == 4 // crops  # photos drawn for this batch
    assert len(loader) == 10 // (4 // crops)  # an epoch draws every training photo once
