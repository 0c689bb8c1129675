"""Lineage: the commit, whether the code differed from it (DVC's own files aside), the data
version, and each stage's inputs as dvc.lock records them."""
import subprocess

import pytest
import yaml

from components.registry.lineage import code_state, inputs_digest, lineage_tags, stage_inputs

LOCK = {"schema": "2.0", "stages": {
    "train": {"cmd": "python -m components.train", "params": {"params.yaml": {"train": {"seed": 0}}},
              "deps": [{"path": "components/train.py", "md5": "aaa"}, {"path": "artifacts/lmdb", "md5": "bbb.dir"}],
              "outs": [{"path": "artifacts/train/model.pth", "md5": "ccc"}]}}}


@pytest.fixture
def repo(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("train: {seed: 0}\n")
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  hash: md5\n  path: data\n")
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=tmp_path, check=True)
    return tmp_path


def test_dvc_files_and_params_rewritten_by_a_run_do_not_make_the_code_modified(repo):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    (repo / "dvc.lock").write_text(yaml.safe_dump({**LOCK, "schema": "2.0 "}))
    (repo / "data.dvc").write_text("outs:\n- md5: def456.dir\n  hash: md5\n  path: data\n")
    (repo / "params.yaml").write_text("train: {seed: 1}\n")
    assert code_state(repo) == (head, "none")
    (repo / "code.py").write_text("x = 2\n")
    assert code_state(repo) == (head, "1 files: code.py")


def test_stage_inputs_are_dvc_lock_s_deps_and_params_and_their_digest_ignores_order(repo):
    tags, stages = lineage_tags(repo)
    assert tags["data_version"] == "abc123.dir" and set(stages) == {"train"}
    assert stages["train"] == {"deps": {"components/train.py": "aaa", "artifacts/lmdb": "bbb.dir"},
                               "params": {"params.yaml": {"train": {"seed": 0}}}}
    reordered = {**LOCK["stages"]["train"], "deps": LOCK["stages"]["train"]["deps"][::-1]}
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train": reordered}}))
    assert inputs_digest(stage_inputs(repo / "dvc.lock")["train"]) == tags["stage_train"]
    changed = {**reordered, "params": {"params.yaml": {"train": {"seed": 1}}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train": changed}}))
    assert inputs_digest(stage_inputs(repo / "dvc.lock")["train"]) != tags["stage_train"]


def test_a_missing_data_version_is_an_error_naming_the_file(repo):
    (repo / "data.dvc").unlink()
    with pytest.raises(ValueError, match="data.dvc does not record a data version"):
        lineage_tags(repo)
