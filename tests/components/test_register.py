import pytest
from mlflow import MlflowClient

from components.register import RegisterPaths, run_register
from components.registry import list_versions, promote
from components.stage import StageFailed
from tests.conftest import fake_stage_outputs


def _register(params, tmp_path, name, **kw):
    dirs = fake_stage_outputs(tmp_path / name, 0.5, 0.1, **kw)
    return run_register(params.register_, RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"]))


def test_first_version_is_champion_later_ones_only_challenger(params, tmp_path, mlflow_store):
    first = _register(params, tmp_path, "a")
    second = _register(params, tmp_path, "b")
    assert first["aliases"] == ["challenger", "champion"] and second["aliases"] == ["challenger"]
    aliases = {k: str(v) for k, v in MlflowClient().get_registered_model("brighthouse").aliases.items()}
    assert aliases == {"champion": first["version"], "challenger": second["version"]}
    mv = MlflowClient().get_model_version("brighthouse", second["version"])
    assert {"data_version", "git_commit", "dvc_lock_sha256", "params_sha256", "run_id"} <= set(mv.tags)
    assert mv.tags["gate"] == "passed" and mv.tags["val_psnr"] == "25.0000"
    assert mv.run_id == second["run_id"]


def test_model_that_failed_the_gate_is_never_registered(params, tmp_path, mlflow_store):
    with pytest.raises(StageFailed, match="failed the gate"):
        _register(params, tmp_path, "bad", gate_passed=False)
    assert MlflowClient().search_registered_models() == []


def test_promote_moves_champion_and_refuses_ungated_versions(params, tmp_path, mlflow_store):
    v1 = _register(params, tmp_path, "a")["version"]
    v2 = _register(params, tmp_path, "b")["version"]
    assert promote("brighthouse", v2) == v1
    assert MlflowClient().get_registered_model("brighthouse").aliases["champion"] == int(v2)
    MlflowClient().set_model_version_tag("brighthouse", v1, "gate", "failed")
    with pytest.raises(ValueError, match="did not pass"):
        promote("brighthouse", v1)
    with pytest.raises(ValueError, match="no version 99"):
        promote("brighthouse", "99")
    rows = list_versions("brighthouse")
    assert [r["version"] for r in rows] == [v2, v1] and "champion" in rows[0]["aliases"]
