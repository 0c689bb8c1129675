"""DDP as users launch it: torchrun, two CPU processes on the gloo backend."""
import json
import subprocess

import pytest
import yaml

from components.lmdb import run_lmdb
from tests.conftest import BIN, REPO, lmdb_paths, tool_env


@pytest.mark.slow
def test_two_gloo_ranks_train_one_model_and_agree(pair_folder, params, tmp_path, mlflow_store):
    from mlflow import MlflowClient

    from components.registry.tracking import state_dir

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"].update({"iterations": 6, "batch_size": 2, "patch_size": 32, "log_every": 2, "device": "cpu",
                         "arch": {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "components.train",
         "--params", str(tmp_path / "params.yaml"), "--lmdb", str(tmp_path / "lmdb"), "--out", str(tmp_path / "train")],
        cwd=REPO, env=tool_env(BRIGHTHOUSE_HOME=str(state_dir())), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "train" / "run.json").read_text())
    assert run["world_size"] == 2
    assert len(run["rank_digests"]) == 2 and len(set(run["rank_digests"])) == 1  # DDP kept them in step
    assert "2 rank(s)" in proc.stderr
    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["dist"] is True and opts["world_size"] == 2
    runs = MlflowClient().search_runs([MlflowClient().get_run(run["run_id"]).info.experiment_id])
    assert len(runs) == 1  # only rank 0 logs
    assert [m.step for m in MlflowClient().get_metric_history(run["run_id"], "train/l_pix")] == [2, 4, 6]
