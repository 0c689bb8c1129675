import json
import subprocess
import sys

from tests.conftest import REPO
from tests.dags.conftest import airflow_env

PROBE = """
import json, sys, time, importlib.util
import airflow.sdk, airflow.providers.standard.triggers.file  # Airflow's own import cost, paid by any DAG
parse = {{}}
mods = {{}}
for name in ("retrain", "champion_check"):
    t = time.perf_counter()
    spec = importlib.util.spec_from_file_location(name + "_dag", "{dags}/" + name + ".py")
    mods[name] = importlib.util.module_from_spec(spec); spec.loader.exec_module(mods[name])
    parse[name] = time.perf_counter() - t
heavy = sorted(m for m in ("torch", "basicsr", "mlflow", "dvc", "great_expectations", "pandas", "components")
               if m in sys.modules)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="{dags}")
def edges(dag):
    return sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)
retrain, check = bag.dags["retrain"], bag.dags["champion_check"]
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "parse_s": parse, "heavy": heavy,
    "edges": {{"retrain": edges(retrain), "champion_check": edges(check)}},
    "max_active_runs": [retrain.max_active_runs, check.max_active_runs],
    "pools": {{t.task_id: t.pool for t in retrain.tasks}},
    "queues": {{t.task_id: t.queue for t in retrain.tasks}},
    "retries": {{t.task_id: t.retries for t in retrain.tasks}},
    "callback": bool(retrain.default_args.get("on_failure_callback")),
    "watched": mods["retrain"].DELIVERY.watchers[0].trigger.filepath,
    "retrain_schedule": type(retrain.timetable).__name__,
    "check_schedule": getattr(check.timetable, "_expression", None) or str(check.schedule),
}}))
"""


def test_dags_load_fast_and_wire_the_pipeline(airflow_home, tmp_path):
    dags = REPO / "dags"
    env = airflow_env(airflow_home, dags, BRIGHTHOUSE_INBOX=str(tmp_path / "inbox"))
    r = subprocess.run([sys.executable, "-c", PROBE.format(dags=dags)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert info["heavy"] == []  # nothing heavy (not even our own components) imported while parsing
    assert info["parse_s"]["retrain"] < 1 and info["parse_s"]["champion_check"] < 1, info["parse_s"]
    steps = ["ingest", "version", "choose_start", "validate", "lmdb", "train", "export", "evaluate", "register", "summary"]
    assert info["edges"]["retrain"] == sorted([a, b] for a, b in zip(steps, steps[1:]))
    assert info["edges"]["champion_check"] == [["champion", "lmdb"], ["lmdb", "champion_check"]]
    assert info["max_active_runs"] == [1, 1] and info["callback"]
    assert info["pools"]["train"] == "gpu" and info["pools"]["validate"] == "default_pool"
    assert info["queues"]["train"] == "gpu" and {q for t, q in info["queues"].items() if t != "train"} == {"default"}
    assert info["retries"]["ingest"] == 3 and info["retries"]["train"] == 2
    assert info["watched"] == str(tmp_path / "inbox" / "READY")
    assert info["retrain_schedule"] == "AssetTriggeredTimetable" and info["check_schedule"] == "@weekly"
