"""What each entry point drags in: the champion check, the review, the registry and serving
run ONNX models and read the registry, so they must not import the training stack."""
import subprocess
import sys

import pytest

from tests.conftest import REPO, tool_env

HEAVY = ("torch", "basicsr", "airflow", "great_expectations", "dvc")


@pytest.mark.parametrize("module", ["components.champion_check", "components.evaluation.review", "components.registry.versions",
                                    "components.inference.onnx_session", "components.data.lmdb_read", "serving.app",
                                    "serving.local", "brighthouse.cli"])
def test_runtime_modules_do_not_import_the_training_stack(module):
    probe = f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])"
    r = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, env=tool_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", f"{module} imports {r.stdout.strip()}"
