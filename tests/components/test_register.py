import pytest
from mlflow import MlflowClient

from components.register import RegisterPaths, run_register
from components.registry.versions import list_versions, promote
from components.errors import StageFailed
from tests.conftest import fake_stage_outputs


def data_dvc(folder):
    """A data.dvc as ``dvc add data`` writes it, recording data version abc123."""
    (folder / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  hash: md5\n  path: data\n")
    return folder / "data.dvc"


def _register(params, tmp_path, name, **kw):
    dirs = fake_stage_outputs(tmp_path / name, 0.5, 0.1, **kw)
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    return run_register(params.register_, paths)


def test_first_version_is_champion_later_ones_only_challenger(params, tmp_path, mlflow_store):
    first = _register(params, tmp_path, "a")
    second = _register(params, tmp_path, "b")
    assert first["aliases"] == ["challenger", "champion"] and second["aliases"] == ["challenger"]
    aliases = {k: str(v) for k, v in MlflowClient().get_registered_model("brighthouse").aliases.items()}
    assert aliases == {"champion": first["version"], "challenger": second["version"]}
    mv = MlflowClient().get_model_version("brighthouse", second["version"])
    assert {"data_version", "git_commit", "code_modified", "run_id"} <= set(mv.tags)
    assert mv.tags["gate"] == "passed" and mv.tags["val_psnr"] == "25.0000"
    assert mv.run_id == second["run_id"]


def test_model_that_failed_the_gate_is_never_registered(params, tmp_path, mlflow_store):
    with pytest.raises(StageFailed, match="failed the gate"):
        _register(params, tmp_path, "bad", gate_passed=False)
    assert MlflowClient().search_registered_models() == []


def test_promote_moves_champion_and_refuses_ungated_versions(params, tmp_path, mlflow_store):
    v1 = _register(params, tmp_path, "a")["version"]
    v2 = _register(params, tmp_path, "b")["version"]
    assert promote(params.registry, v2) == v1
    assert MlflowClient().get_registered_model("brighthouse").aliases["champion"] == int(v2)
    MlflowClient().set_model_version_tag("brighthouse", v1, "gate", "failed")
    with pytest.raises(ValueError, match="did not pass"):
        promote(params.registry, v1)
    with pytest.raises(ValueError, match="no version 99"):
        promote(params.registry, "99")
    rows = list_versions("brighthouse")
    assert [r["version"] for r in rows] == [v2, v1] and "champion" in rows[0]["aliases"]


def test_promote_refuses_a_version_whose_artifacts_are_gone_or_broken(params, tmp_path, mlflow_store):
    import shutil
    from urllib.parse import urlparse

    v1 = _register(params, tmp_path, "a")["version"]
    v2 = _register(params, tmp_path, "b")["version"]
    v3 = _register(params, tmp_path, "c")["version"]
    client = MlflowClient()
    shutil.rmtree(urlparse(client.get_model_version_download_uri("brighthouse", v2)).path)
    with pytest.raises(ValueError, match=f"version {v2} cannot be loaded.*refusing to promote"):
        promote(params.registry, v2)
    broken = urlparse(client.get_model_version_download_uri("brighthouse", v3)).path
    for onnx in __import__("pathlib").Path(broken).rglob("*.onnx"):
        onnx.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match=f"version {v3} cannot be loaded.*onnxruntime"):
        promote(params.registry, v3)
    assert client.get_registered_model("brighthouse").aliases["champion"] == int(v1)  # never moved


def test_a_retried_register_reuses_its_version(params, tmp_path, mlflow_store):
    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    first, again = run_register(params.register_, paths), run_register(params.register_, paths)
    assert first["version"] == again["version"] == "1"
    assert len(MlflowClient().search_model_versions("name='brighthouse'")) == 1


def test_a_registry_hiccup_on_retry_registers_nothing_twice(params, tmp_path, mlflow_store, monkeypatch):
    """Before: any registry error while listing versions meant "no versions", so the retry of a
    register that had already created its version created a second one."""
    from mlflow.exceptions import MlflowException

    from components.registry.tracking import RegistryUnavailable

    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    run_register(params.register_, paths)
    real = MlflowClient.search_model_versions

    def hiccup(self, *args, **kwargs):
        raise MlflowException("API request to endpoint /api/2.0/mlflow/model-versions/search failed: 503")

    monkeypatch.setattr(MlflowClient, "search_model_versions", hiccup)
    with pytest.raises(RegistryUnavailable, match=r"registering .*model.onnx: the MLflow registry at sqlite:.* failed"):
        run_register(params.register_, paths)
    monkeypatch.setattr(MlflowClient, "search_model_versions", real)
    assert len(MlflowClient().search_model_versions("name='brighthouse'")) == 1


def test_promote_never_takes_a_registry_hiccup_for_a_missing_version(params, tmp_path, mlflow_store, monkeypatch):
    from mlflow.exceptions import MlflowException

    from components.registry.tracking import RegistryUnavailable

    _register(params, tmp_path, "a")
    _register(params, tmp_path, "b")

    def hiccup(self, *args, **kwargs):
        raise MlflowException("API request to endpoint /api/2.0/mlflow/model-versions/get failed: 503")

    monkeypatch.setattr(MlflowClient, "get_model_version", hiccup)
    with pytest.raises(RegistryUnavailable, match="promoting brighthouse version 2"):
        promote(params.registry, "2")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="has no version 7"):
        promote(params.registry, "7")
    assert str(MlflowClient().get_registered_model("brighthouse").aliases["champion"]) == "1"


def test_a_version_created_before_a_crash_is_completed_by_the_retry(params, tmp_path, mlflow_store, monkeypatch):
    """The registry died after creating the version, before its tags and aliases were set."""
    from components.registry.tracking import RegistryUnavailable

    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    real = MlflowClient.set_registered_model_alias

    def down(self, *args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", down)
    with pytest.raises(RegistryUnavailable):
        run_register(params.register_, paths)
    assert not (dirs["register"] / "registered.json").exists()
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real)
    again = run_register(params.register_, paths)
    assert again["version"] == "1" and set(again["aliases"]) == {"challenger", "champion"}
    versions = MlflowClient().search_model_versions("name='brighthouse'")
    assert len(versions) == 1 and versions[0].tags["gate"] == "passed"


def test_challenger_summary_compares_with_the_champion_and_tags_it(params, tmp_path, mlflow_store):
    from components.registry.versions import challenger_summary

    _register(params, tmp_path, "a")
    v2 = _register(params, tmp_path, "b")["version"]
    MlflowClient().set_model_version_tag("brighthouse", v2, "val_psnr", "26.5000")
    summary = challenger_summary(params.registry, v2)
    assert summary["champion"] == "1" and summary["psnr_vs_champion_db"] == pytest.approx(1.5)
    assert summary["run"].startswith("http://127.0.0.1:5000/#/experiments/")
    mv = MlflowClient().get_model_version("brighthouse", v2)
    assert mv.tags["summary_psnr_vs_champion_db"] == "1.5"
    assert MlflowClient().get_run(mv.run_id).data.tags["summary_champion"] == "1"


def test_champion_reevaluation_records_drift(params, tmp_path, mlflow_store, pair_folder):
    import json

    from components.lmdb import run_lmdb
    from components.champion_check import reevaluate_champion
    from tests.conftest import lmdb_paths

    _register(params, tmp_path, "a")  # an ONNX computing x*0.5+0.1, registered with val_psnr 25
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = reevaluate_champion(params.registry, tmp_path / "lmdb", data_dvc(tmp_path), tmp_path / "check.json")
    assert result["version"] == "1" and result["images"] == 2
    assert result["drift_db"] == pytest.approx(result["psnr"] - 25.0)
    assert json.loads((tmp_path / "check.json").read_text())["psnr"] == result["psnr"]
    tags = MlflowClient().get_model_version("brighthouse", "1").tags
    assert float(tags["last_check_psnr"]) == pytest.approx(result["psnr"], abs=1e-6)


def test_a_version_carries_its_config_and_evaluation_report(params, tmp_path, mlflow_store):
    import mlflow

    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    (dirs["train"] / "basicsr_options.yml").write_text("network_g: {type: NAFNet}\n")
    (dirs["evaluate"] / "report.html").write_text("<html>worst images</html>")
    version = run_register(params.register_, RegisterPaths(*(dirs[k] for k in ("train", "evaluate", "export",
                                                                                  "register", "lmdb"))))["version"]
    local = mlflow.artifacts.download_artifacts(f"models:/brighthouse/{version}", dst_path=str(tmp_path / "dl"))
    from pathlib import Path

    files = {str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file()}
    assert {"model.onnx", "MLmodel", "config/basicsr_options.yml", "config/params.yaml",
            "evaluation/report.html", "evaluation/metrics.json", "export/export.json"} <= files
    assert (Path(local) / "evaluation/report.html").read_text() == "<html>worst images</html>"


def test_the_fp16_variant_ships_only_when_evaluation_found_it_good(params, tmp_path, mlflow_store):
    import json

    from components.registry.model_store import fetch

    refs = {}
    for name, ok in (("good", True), ("lossy", False)):
        dirs = fake_stage_outputs(tmp_path / name, 0.5, 0.1)
        metrics = json.loads((dirs["evaluate"] / "metrics.json").read_text())
        metrics.update(fp16_ok=ok, fp16_loss_db=0.01 if ok else 0.4)
        (dirs["evaluate"] / "metrics.json").write_text(json.dumps(metrics))
        (dirs["export"] / "model_fp16.onnx").write_bytes((dirs["export"] / "model.onnx").read_bytes())
        version = run_register(params.register_, RegisterPaths(*(dirs[k] for k in ("train", "evaluate", "export",
                                                                                      "register", "lmdb"))))["version"]
        refs[name] = fetch("brighthouse", "challenger", version)
    assert refs["good"].fp16_path is not None and refs["good"].metadata.fp16 is True
    assert refs["lossy"].fp16_path is None and refs["lossy"].metadata.fp16_loss_db == 0.4


def test_without_tensorrt_the_version_says_why_it_has_no_engine(params, tmp_path, mlflow_store):
    from components.inference.tensorrt_engine import unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present: the engine is built (test_tensorrt_engine)")
    result = _register(params, tmp_path, "a")
    assert result["tensorrt"] == {"skipped": reason}
    assert MlflowClient().get_model_version("brighthouse", result["version"]).tags["tensorrt"] == f"none: {reason}"


def test_a_built_engine_ships_with_the_version_under_its_gpu_key(params, tmp_path, mlflow_store, monkeypatch):
    """The build is replaced (it needs a GPU); what is checked is that its files travel with
    the version to where serving looks for them, and that a failed build is recorded."""
    from pathlib import Path

    import components.register as register
    from components.inference.tensorrt_engine import engine_files
    from components.registry.model_store import fetch

    def fake_build(onnx_path, out_dir, tile, batch):
        assert onnx_path.name == "model.onnx" and (tile, batch) == (64, 2)  # the tiling the gate used
        (out_dir / "g_1_sm90.engine").write_bytes(b"plan")
        (out_dir / "g_1_sm90.profile").write_bytes(b"shapes")
        return {"key": "GPU-X-trt10-ort1", "files": ["g_1_sm90.engine", "g_1_sm90.profile"], "build_seconds": 1.0}

    monkeypatch.setattr(register, "unavailable_reason", lambda: None)
    monkeypatch.setattr(register, "build_engine", fake_build)
    monkeypatch.setattr(register, "engine_val_loss_db", lambda *a: 0.01)  # scored on the val split: it keeps quality
    result = _register(params, tmp_path, "a")
    ref = fetch("brighthouse", "champion", result["version"])
    assert ref.tags["tensorrt"] == "GPU-X-trt10-ort1" and result["tensorrt"]["key"] == "GPU-X-trt10-ort1"
    assert set(engine_files(Path(ref.onnx_path).parent / "tensorrt" / "GPU-X-trt10-ort1")) == {
        "g_1_sm90.engine", "g_1_sm90.profile"}

    def failing_build(*_):
        raise RuntimeError("TensorRT input: unsupported operator")

    monkeypatch.setattr(register, "build_engine", failing_build)
    failed = _register(params, tmp_path, "b")  # the gate passed: registered without an engine
    assert "unsupported operator" in failed["tensorrt"]["failed"]
    assert MlflowClient().get_model_version("brighthouse", failed["version"]).tags["tensorrt"].startswith("none: ")

    monkeypatch.setattr(register, "build_engine", fake_build)
    monkeypatch.setattr(register, "engine_val_loss_db", lambda *a: 0.3)  # FP16 lost quality on the val split
    lossy = _register(params, tmp_path, "c")
    tag = MlflowClient().get_model_version("brighthouse", lossy["version"]).tags["tensorrt"]
    assert tag.startswith("none: the FP16 engine loses 0.300 dB on the val split, over the 0.05 dB limit")
    ref = fetch("brighthouse", "challenger", lossy["version"])
    assert not (Path(ref.onnx_path).parent / "tensorrt").exists()  # serving finds nothing to run


def test_training_outputs_from_another_store_fail_early_and_say_what_to_do(params, tmp_path, mlflow_store):
    from components.records import TRAIN_RECORD, TrainRecord, write_record

    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    write_record(dirs["train"] / TRAIN_RECORD, TrainRecord(run_id="0123456789abcdef0123456789abcdef"))
    with pytest.raises(StageFailed, match=r"not in the MLflow store .*dvc repro -f train"):
        run_register(params.register_, RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"]))
    assert MlflowClient().search_registered_models() == []


def test_weights_that_are_not_the_ones_the_run_logged_fail_early(params, tmp_path, mlflow_store):
    """DVC tracks model.pth, not run.json: a checkout can put other weights beside a run record."""
    dirs = fake_stage_outputs(tmp_path / "a", 0.5, 0.1)
    (dirs["train"] / "model.pth").write_bytes(b"weights from another training")
    with pytest.raises(StageFailed, match=r"is not the model training run .* logged .*dvc repro -f train"):
        run_register(params.register_, RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"]))
    (dirs["train"] / "run.json").unlink()
    with pytest.raises(StageFailed, match=r"no record of its MLflow run"):
        run_register(params.register_, RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"]))
    assert MlflowClient().search_registered_models() == []


def test_a_champion_is_never_re_evaluated_on_pairs_it_trained_on(params, tmp_path, mlflow_store, pair_folder):
    from components.lmdb import run_lmdb
    from components.champion_check import reevaluate_champion
    from tests.conftest import lmdb_paths

    _register(params, tmp_path, "a")  # trained (its metadata says) on p00-p11 but p08 and p11
    cv = params.lmdb.model_copy(update={"cross_validate_below": 60})  # now every pair is scored, out of fold
    run_lmdb(cv, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = reevaluate_champion(params.registry, tmp_path / "lmdb", data_dvc(tmp_path), tmp_path / "check.json")
    assert result["images"] == 2  # p08 and p11 only
    run_lmdb(cv, lmdb_paths(pair_folder, tmp_path / "lmdb2", [f"p{i:02d}" for i in range(8)]))  # all seen
    skipped = reevaluate_champion(params.registry, tmp_path / "lmdb2", data_dvc(tmp_path), tmp_path / "c2.json")
    assert skipped["images"] == 0 and "trained on every val pair" in skipped["skipped"]


def test_a_version_registered_by_an_older_writer_is_refused_by_name(params, tmp_path, mlflow_store):
    """Version metadata is a typed record: one without it (an older brighthouse recorded a bare
    "tiling" and no schema) is refused with the version named, never run with guessed settings."""
    from urllib.parse import urlparse

    import yaml

    from components.registry.model_store import ModelUnusable, fetch

    version = _register(params, tmp_path, "old")["version"]
    folder = __import__("pathlib").Path(urlparse(MlflowClient().get_model_version_download_uri("brighthouse",
                                                                                               version)).path)
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert mlmodel["metadata"]["schema_version"] == 1 and mlmodel["metadata"]["inference"]["mode"]
    mlmodel["metadata"] = {"tiling": {"tile": 64, "overlap": 8, "batch": 2}}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelUnusable, match=f"version {version} records metadata this brighthouse does not read"):
        fetch("brighthouse", "challenger", version, cache_root=tmp_path / "cache")
