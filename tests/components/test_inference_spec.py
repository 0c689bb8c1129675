"""One inference spec: params.yaml's ``inference`` section is what training's validation,
export's check of the served composite and the gate all run, knob for knob."""
import pytest
import yaml

from components.config import InferenceSpec, load_params
from components.records import CheckpointView
from tests.conftest import REPO

KNOBS = [("mode", "tiled"), ("working_size", 320), ("tiling.tile", 192), ("tiling.overlap", 16),
         ("tiling.batch", 3), ("transfer.radius", 4), ("transfer.eps", 0.01), ("transfer.strip_rows", 128)]


def with_knob(raw: dict, dotted: str, value) -> dict:
    node = raw["inference"]
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return raw


@pytest.mark.parametrize(("knob", "value"), KNOBS)
def test_every_consumer_is_handed_the_one_section_with_each_knob(tmp_path, knob, value):
    raw = with_knob(yaml.safe_load((REPO / "params.yaml").read_text()), knob, value)
    if knob == "mode":
        raw["train"]["profile"] = "tiny"  # the default profile is a global_view recipe
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "p.yaml")
    spec = params.inference.model_dump()
    node = spec
    for key in knob.split("."):
        node = node[key]
    assert node == value
    assert params.train.inference == params.export.inference == params.evaluate.inference == params.inference


def test_a_second_home_for_the_spec_is_refused(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["evaluate"]["inference"] = raw["inference"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="edit the top-level 'inference' section"):
        load_params(tmp_path / "p.yaml")
    with pytest.raises(ValueError, match="mode"):
        InferenceSpec()  # no silent default for the mode


def test_monitor_export_and_gate_run_the_changed_spec(pair_folder, params, tmp_path, mlflow_store, monkeypatch):
    """A changed working size and transfer reach training's validation, export's composite check
    and the gate; an export made under another spec is refused by evaluate, naming the file."""
    import torch

    from components import evaluate, export
    from components.errors import StageFailed
    from components.evaluation import train_monitor
    from components.lmdb import run_lmdb
    from components.model.curves_nafnet import CurvesNAFNet
    from components.model.model_io import save_checkpoint
    from components.records import ExportRecord, read_record
    from tests.conftest import lmdb_paths

    spec = params.inference.model_copy(update={
        "mode": "global_view", "working_size": 64,
        "transfer": params.inference.transfer.model_copy(update={"radius": 4, "eps": 0.01})})
    arch = {"width": 8, "enc_blk_nums": [1], "middle_blk_num": 1, "dec_blk_nums": [1]}
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    model = CurvesNAFNet(**arch)
    save_checkpoint(tmp_path / "train" / "model.pth", model.state_dict(), arch, 48,
                    CheckpointView(mode="global_view", working_size=64))
    seen = {}

    def recording(name, real):
        def enhance(photo, run, used, **kw):
            seen[name] = used
            return real(photo, run, used, **kw)
        return enhance

    monkeypatch.setattr(train_monitor, "enhance", recording("monitor", train_monitor.enhance))
    import mlflow

    hook = train_monitor.validation_hook(tmp_path / "lmdb", params.train.model_copy(update={
        "inference": spec, "val_images": 1}), "cpu")
    from components.registry.tracking import get_or_create_experiment

    with mlflow.start_run(experiment_id=get_or_create_experiment("brighthouse")):  # as training's run, in the store
        hook(1, model)

    def composite_diff(model, onnx_path, lmdb_dir, used):
        seen["export"] = used
        return 0.0

    monkeypatch.setattr(export, "composite_diff", composite_diff)
    paths = export.ExportPaths(tmp_path / "train", tmp_path / "lmdb", tmp_path / "export")
    export.run_export(params.export.model_copy(update={"inference": spec, "fp16": False}), paths)
    record = read_record(ExportRecord, tmp_path / "export" / "export.json")
    gate_cfg = params.evaluate.model_copy(update={"inference": spec})
    seen["gate"] = evaluate.exported_spec(gate_cfg, record, tmp_path / "export" / "export.json")
    assert seen == {"monitor": spec, "export": spec, "gate": spec}

    other = params.evaluate.model_copy(update={"inference": spec.model_copy(update={"working_size": 96})})
    with pytest.raises(StageFailed, match=r"export\.json was exported under inference"):
        evaluate.exported_spec(other, record, tmp_path / "export" / "export.json")
    with pytest.raises(StageFailed, match=r"trained for inference\.mode=global_view"):
        export.run_export(params.export.model_copy(update={"inference": spec.model_copy(update={"mode": "tiled"})}),
                          paths)
    assert torch.load(tmp_path / "train" / "model.pth", weights_only=True)["view"]["mode"] == "global_view"
