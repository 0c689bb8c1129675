"""Registry and run lookups name their store explicitly: nothing has to run before them."""
import json
import subprocess
import sys

from tests.conftest import REPO, fake_stage_outputs, tool_env
from tests.serving.conftest import register_affine

LOOKUPS = """
import json, sys
from pathlib import Path
from mlflow.tracking._tracking_service.utils import is_tracking_uri_set
from components.registry.model_store import alias_version, fetch
from components.registry.versions import list_versions
from components.registry.tracking import training_run
ref = fetch('brighthouse', 'champion', '1', cache_root=Path(sys.argv[2]))  # what serving's poll does
print(json.dumps([training_run(Path(sys.argv[1])), alias_version('brighthouse', 'champion'),
                  [row['version'] for row in list_versions('brighthouse')], ref.onnx_path.is_file(),
                  is_tracking_uri_set()]))
"""


def test_lookups_in_a_fresh_process_find_the_project_store_without_setup(params, tmp_path, mlflow_store):
    """A fetch names the store in every call and sets nothing process-wide. Before, a lookup that ran before ``use_tracking()`` opened MLflow's default store: a new
    ``mlflow.db`` in the working directory (one was found at the repo root) and "not found"."""
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    trained = fake_stage_outputs(tmp_path / "v2", 0.6, 0.2)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    r = subprocess.run([sys.executable, "-c", LOOKUPS, str(trained["train"]), str(tmp_path / "cache")], cwd=workdir,
                       capture_output=True,
                       text=True, env=tool_env(BRIGHTHOUSE_HOME=str(tmp_path / "state"), PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr[-3000:]
    run_id = json.loads((trained["train"] / "run.json").read_text())["run_id"]
    # the last False: no process-wide MLflow setting was changed (serving's poll thread fetches)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [run_id, "1", ["1"], True, False]
    assert list(workdir.iterdir()) == []  # no default store left behind


def test_the_state_folder_is_the_checkouts_from_any_subfolder(tmp_path, monkeypatch):
    """``brighthouse models`` run from ``data/`` finds the project's registry, not a new empty
    one; outside a checkout (a serving box) it is the working folder's; the env var wins."""
    from components.registry.tracking import STATE_DIR_ENV, state_dir

    project = tmp_path / "project"
    (project / "data" / "deep").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        (project / name).write_text("{}\n")
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    monkeypatch.chdir(project / "data" / "deep")
    assert state_dir() == project.resolve() / ".brighthouse"
    monkeypatch.chdir(tmp_path)
    assert state_dir() == tmp_path.resolve() / ".brighthouse"
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert state_dir() == (tmp_path / "elsewhere").resolve()
