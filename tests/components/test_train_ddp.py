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


@pytest.mark.slow
def test_two_ranks_agree_on_what_a_small_set_ships(pair_folder, params, tmp_path, mlflow_store):
    """Only rank 0 scores the fold models against their presets; every rank must act on its
    verdict (train one more model together, or stop), or DDP would hang."""
    from components.registry.tracking import state_dir

    run_lmdb(params.lmdb.model_copy(update={"cross_validate_below": 60, "folds": 2}),
             lmdb_paths(pair_folder, tmp_path / "lmdb"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())  # the cpu profile: a network over the preset
    raw["inference"]["working_size"] = 64
    raw["train"].update({"iterations": 4, "fold_iterations": 4, "batch_size": 2, "patch_size": 32, "device": "cpu",
                         "val_every": 0, "checkpoint_every": 0,
                         "arch": {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "components.train",
         "--params", str(tmp_path / "params.yaml"), "--lmdb", str(tmp_path / "lmdb"), "--out", str(tmp_path / "train")],
        cwd=REPO, env=tool_env(BRIGHTHOUSE_HOME=str(state_dir())), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "train" / "run.json").read_text())
    check = run["network_vs_preset"]
    assert check["pairs"] == 12 and run["world_size"] == 2
    assert run["ships"] == ("network" if check["network_psnr"] > check["preset_psnr"] else "preset")


RANK_SCRIPT = """
import sys, time
from pathlib import Path
from components.model.distributed import init_distributed
init_distributed("cpu")
Path(sys.argv[1]).write_text(str(__import__("os").getpid()))
time.sleep(120)
"""


def test_a_rank_ends_when_its_launcher_is_killed_with_its_process_group(tmp_path):
    """torchrun gives each rank a session of its own: killing a worker's process group (a
    preempted Airflow worker) must not leave its training running beside the retry."""
    import os
    import signal
    import time

    script, pid_file = tmp_path / "rank.py", tmp_path / "rank.pid"
    script.write_text(RANK_SCRIPT)
    launcher = subprocess.Popen([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "1", str(script),
                                 str(pid_file)], cwd=REPO, env=tool_env(PYTHONPATH=str(REPO)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.monotonic() < deadline and launcher.poll() is None, "the rank never started"
            time.sleep(0.2)
        rank = int(pid_file.read_text())
        assert os.getpgid(rank) != launcher.pid  # its own session: the group kill does not reach it
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{rank}") and "Z" not in _state(rank):
            assert time.monotonic() < deadline, f"rank {rank} outlived its killed launcher"
            time.sleep(0.1)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
        if pid_file.is_file() and pid_file.read_text() and _state(int(pid_file.read_text())) not in ("gone", "Z"):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # a failed check leaves no orphan


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
