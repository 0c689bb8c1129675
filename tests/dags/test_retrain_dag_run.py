"""``airflow dags test`` runs the retrain DAG end to end on a project copy (tiny settings)."""
import subprocess

import pytest
import yaml

from tests.dags.conftest import airflow_env

pytestmark = pytest.mark.slow


def test_dag_run_registers_a_model(project_copy, airflow_home):
    raw = yaml.safe_load((project_copy / "params.yaml").read_text())
    raw["train"]["iterations"] = 20
    raw["evaluate"]["gate"] = {"min_psnr": 0.0, "min_ssim": 0.0, "min_psnr_gain_over_identity": -100.0}
    (project_copy / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = airflow_env(airflow_home, project_copy / "dags", BRIGHTHOUSE_PROJECT_DIR=str(project_copy))
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True, cwd=airflow_home.parent)
    r = subprocess.run(["airflow", "dags", "test", "retrain"], env=env, capture_output=True, text=True,
                       cwd=airflow_home.parent, timeout=1500)
    log = r.stdout + r.stderr
    assert r.returncode == 0 and "state=success" in log, log[-4000:]

    from mlflow import MlflowClient

    uri = f"sqlite:///{project_copy / '.brighthouse' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("brighthouse", "challenger").version) == "1"
    assert (project_copy / "artifacts/register/registered.json").exists()
