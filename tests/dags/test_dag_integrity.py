import json
import subprocess
import sys

from tests.conftest import REPO
from tests.dags.conftest import airflow_env

PROBE = """
import json, time
t = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("retrain_dag", "{dag}")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
parse_s = time.perf_counter() - t
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="{dags}")
dag = bag.dags["retrain"]
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "parse_s": parse_s,
    "heavy": sorted(m for m in ("torch", "basicsr", "mlflow", "dvc", "great_expectations") if m in __import__("sys").modules),
    "edges": sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids),
    "max_active_runs": dag.max_active_runs,
}}))
"""


def test_dags_load_without_errors_and_chain_the_pipeline_stages(airflow_home):
    dags = REPO / "dags"
    code = PROBE.format(dag=dags / "retrain.py", dags=dags)
    r = subprocess.run([sys.executable, "-c", code], env=airflow_env(airflow_home, dags),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert info["heavy"] == []  # nothing heavy imported while parsing
    assert info["max_active_runs"] == 1
    stages = ["validate", "lmdb", "train", "evaluate", "export", "register"]
    assert info["edges"] == sorted([a, b] for a, b in zip(stages, stages[1:]))
    assert info["parse_s"] < 5  # airflow.sdk import dominates; the file itself does no work
