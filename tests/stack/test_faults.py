"""Faults on the stack, with the real services stopped: nothing registered twice, a clear error
naming what failed, a bounded wait."""
import time
import uuid

import pytest

from stack.apps import mlflow_service
from stack.services import start, stop
from stack.settings import StackSettings

pytestmark = [pytest.mark.services, pytest.mark.slow]

REGISTER = """
import sys
from pathlib import Path
from components.config import load_params
from components.register import RegisterPaths, main
from tests.conftest import fake_stage_outputs
root = Path(sys.argv[1])
if not (root / "train" / "run.json").exists():
    fake_stage_outputs(root, 0.5, 0.1)  # what train, export and evaluate left: a run in the server
    sys.exit(0)
dirs = {k: str(root / d) for k, d in (("train", "train"), ("evaluate", "evaluate"), ("export", "export"), ("out", "register"), ("lmdb", "lmdb"))}
sys.exit(main(["--params", sys.argv[2], *[a for k, v in dirs.items() for a in (f"--{k}", v)]]))
"""


def versions(stack, name: str) -> int:
    probe = f"from mlflow import MlflowClient\nprint(len(MlflowClient().search_model_versions(\"name='{name}'\")))"
    return int(stack.run("python", "-c", probe).stdout.split()[-1])


def test_register_with_the_mlflow_server_down_fails_clearly_and_the_retry_registers_once(stack, tmp_path):
    import yaml

    from tests.conftest import REPO

    name = f"fault-{uuid.uuid4().hex[:8]}"
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["registry"]["model_name"] = name
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    argv = ["python", "-c", REGISTER, str(tmp_path / "stage"), str(tmp_path / "params.yaml")]
    stack.run(*argv, cwd=REPO)  # trained: the run is in the server; nothing registered yet
    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    stop(stack.folder, "mlflow")
    try:
        started = time.monotonic()
        down = stack.run(*argv, cwd=REPO, check=False)
        waited = time.monotonic() - started
    finally:
        start(mlflow_service(settings), stack.folder)
    said = down.stderr.strip().splitlines()[-1] if down.stderr.strip() else ""
    print(f"\nregister with the MLflow server down: exit {down.returncode} after {waited:.0f} s: {said}")
    assert down.returncode == 2 and "Traceback" not in down.stderr, down.stderr[-3000:]
    assert stack.env["MLFLOW_TRACKING_URI"] in said, said
    assert waited < 90  # MLflow's client limits from the env file, not its default minutes
    for _ in range(2):  # the retry registers; one more retry (as after a later crash) reuses it
        again = stack.run(*argv, cwd=REPO)
        assert '"version": "1"' in again.stdout, again.stdout
    assert versions(stack, name) == 1
