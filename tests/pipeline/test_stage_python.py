"""Stage commands start Python through ``bin/python``: ``.venv/bin/dvc repro`` works from a
shell that never activated the venv, and with no Python at all the message says what to do."""
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO


def _clean_env(path: str) -> dict[str, str]:
    """A login shell's environment: no venv activated, ``path`` as PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "CONDA_PREFIX") and not k.startswith(("MLFLOW_", "BRIGHTHOUSE_"))}
    return {**env, "PATH": path}


@pytest.mark.slow
def test_dvc_from_the_venv_runs_a_stage_without_the_venv_on_path(project_copy):
    (project_copy / ".venv").symlink_to(BIN.parent)  # what `make install` leaves in a checkout
    r = subprocess.run([str(BIN / "dvc"), "repro", "--single-item", "validate"], cwd=project_copy,
                       env=_clean_env("/usr/bin:/bin"), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (project_copy / "artifacts" / "validate" / "report.json").is_file()


def _checkout(root, with_venv: bool):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").write_bytes((REPO / "bin" / "python").read_bytes())
    (root / "bin" / "python").chmod(0o755)
    if with_venv:
        (root / ".venv").symlink_to(BIN.parent)
    return root / "bin" / "python"


def test_bin_python_prefers_the_checkouts_venv_and_says_what_to_do_without_one(tmp_path):
    script = _checkout(tmp_path / "with", with_venv=True)
    r = subprocess.run([str(script), "-c", "import sys; print(sys.prefix)"],
                       env=_clean_env("/usr/bin:/bin"), capture_output=True, text=True, check=True)
    assert Path(r.stdout.strip()).resolve() == BIN.parent.resolve()
    script = _checkout(tmp_path / "without", with_venv=False)
    r = subprocess.run(["/bin/sh", str(script), "-V"], env=_clean_env(str(tmp_path / "empty")),
                       capture_output=True, text=True)
    assert r.returncode == 127 and "run 'make install'" in r.stderr
