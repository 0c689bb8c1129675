"""The ``brighthouse`` command as a user runs it (a real subprocess)."""
import subprocess

from tests.conftest import REPO, tool_env


def run(*args, cwd=REPO):
    return subprocess.run(["brighthouse", *args], cwd=cwd, env=tool_env(), capture_output=True, text=True)


def test_data_validate_passes_a_good_folder(pair_folder):
    r = run("data", "validate", str(pair_folder))
    assert r.returncode == 0 and "all 12 pairs passed" in r.stdout


def test_data_validate_names_failing_pairs_and_exits_nonzero(pair_folder):
    (pair_folder / "p03_tar.png").unlink()
    r = run("data", "validate", str(pair_folder))
    assert r.returncode == 1
    assert "p03: partner file missing" in r.stderr and "p03_src.png" in r.stderr


def test_models_without_a_registry_says_what_to_do(tmp_path):
    r = subprocess.run(["brighthouse", "models", "--params", str(REPO / "params.yaml")], cwd=tmp_path,
                       env=tool_env(BRIGHTHOUSE_HOME=str(tmp_path / "state")), capture_output=True, text=True)
    assert r.returncode == 1 and "dvc repro" in r.stderr
