"""``airflow dags test`` runs the DAGs end to end on a project copy (tiny settings)."""
import subprocess

import pytest
import yaml
from mlflow import MlflowClient

from components.data.deliveries import COMPLETE
from components.register import RegisterPaths, run_register
from components.registry.tracking import use_tracking
from tests.conftest import fake_stage_outputs
from tests.dags.conftest import airflow_env
from tests.deliveries import BAD, CONVERTED, GOOD, build_delivery, edit, quick_run_params, save_pair, scene

pytestmark = pytest.mark.slow


def airflow(env, cwd, *args, timeout=1500):
    r = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def nfiles(project):
    return yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["nfiles"]


def deliver(folder, prefix, seed):
    folder.mkdir()
    for i in range(2):
        save_pair(folder, f"{prefix}{i}", scene(seed + i), edit(scene(seed + i)))
    (folder / COMPLETE).touch()


def test_deliveries_train_a_challenger_and_leave_the_champion(project_copy, airflow_home, tmp_path, monkeypatch, params):
    quick_run_params(project_copy)
    raw = yaml.safe_load((project_copy / "params.yaml").read_text())
    raw["train"]["warm_start"]["for_deliveries"] = True  # deliveries fine-tune the champion, whatever the default
    (project_copy / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("BRIGHTHOUSE_HOME", str(project_copy / ".brighthouse"))  # the project's own store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    use_tracking()
    dirs = fake_stage_outputs(tmp_path / "champion", 0.5, 0.1)
    run_register(params.register_, RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"]))
    client = MlflowClient()

    inbox = project_copy / "inbox"
    build_delivery(inbox / "batch-1", project_copy / "data" / "coffee_0_tar.jpg")
    (inbox / "batch-1" / COMPLETE).touch()
    before = nfiles(project_copy)
    env = airflow_env(airflow_home, project_copy / "dags", BRIGHTHOUSE_PROJECT_DIR=str(project_copy))
    assert airflow(env, tmp_path, "db", "migrate")[0] == 0
    assert airflow(env, tmp_path, "pools", "set", "gpu", "1", "training")[0] == 0
    # A person asked for a full retrain (the DAG's param), whatever warm_start says.
    code, log = airflow(env, tmp_path, "dags", "test", "retrain", "--conf", '{"full_retrain": true}')
    assert code == 0 and "state=success" in log, log[-5000:]
    assert nfiles(project_copy) == before + 2 * len(GOOD + list(CONVERTED))
    aliases = {k: str(v) for k, v in client.get_registered_model("brighthouse").aliases.items()}
    assert aliases == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version("brighthouse", "2").tags
    assert tags["summary_champion"] == "1" and "summary_psnr_vs_champion_db" in tags
    assert all(pair_id in log for pair_id in BAD)  # each rejected pair is named in the task log
    assert "a full retrain was asked for" in log and "training from scratch" in log, log[-5000:]
    assert tags["started_from"].startswith("scratch: ") and "full retrain" in tags["started_from"]
    assert yaml.safe_load((project_copy / "params.yaml").read_text())["train"]["start_from"] == ""  # dvc.lock has it

    # A delivery of only bad pairs: the run ends cleanly, says why, and registers nothing.
    build_delivery(tmp_path / "scratch", project_copy / "data" / "coffee_0_tar.jpg")
    (inbox / "batch-2").mkdir()
    for pair_id in ("swapped", "nopartner", "cut"):
        for f in (tmp_path / "scratch").glob(f"{pair_id}_*"):
            f.rename(inbox / "batch-2" / f.name)
    (inbox / "batch-2" / COMPLETE).touch()
    code, log = airflow(env, tmp_path, "dags", "test", "retrain")
    assert code == 0 and "state=success" in log and "nothing to train on" in log, log[-5000:]
    assert len(client.search_model_versions("name='brighthouse'")) == 2

    # Version 2 promoted: the next delivery fine-tunes it (params.yaml, so dvc.lock, names it).
    # And a model the gate refuses is an outcome: the run ends green, register is skipped, nothing
    # is retried, and the summary says why. (A fine-tune's lineage on its version and review page:
    # tests/components/test_warm_start.py and test_review.py.)
    client.set_registered_model_alias("brighthouse", "champion", "2")
    raw = yaml.safe_load((project_copy / "params.yaml").read_text())
    raw["evaluate"]["gate"]["min_psnr"] = 99.0
    (project_copy / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    deliver(inbox / "batch-3", "late", 20)
    code, log = airflow(env, tmp_path, "dags", "test", "retrain")
    assert code == 0 and "state=success" in log, log[-5000:]
    assert "training starts from version 2" in log and "warm start from version 2" in log, log[-5000:]
    assert yaml.safe_load((project_copy / "params.yaml").read_text())["train"]["start_from"] == "2"
    assert "rejected, not registered" in log and "PSNR" in log and "report.html" in log, log[-5000:]
    assert "up_for_retry" not in log.lower() and "retrain failed at step" not in log, log[-5000:]
    assert len(client.search_model_versions("name='brighthouse'")) == 2

    # The weekly check re-scores the champion on the latest val split.
    code, log = airflow(env, tmp_path, "dags", "test", "champion_check")
    assert code == 0 and "state=success" in log, log[-5000:]
    assert "last_check_drift_db" in client.get_model_version("brighthouse", "2").tags
