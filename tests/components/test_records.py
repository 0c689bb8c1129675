"""Typed records between stages: written whole, read back checked, a foreign file named."""
import json

import pytest

from components.config import InferenceSpec
from components.errors import StageFailed
from components.records import (EVALUATION_RECORD, EXPORT_RECORD, EvaluationRecord, ExportRecord, read_record,
                                write_record)


def record() -> ExportRecord:
    return ExportRecord(onnx="model.onnx", inference=InferenceSpec(mode="global_view"), max_abs_diff={"real": 1e-5},
                        atol=1e-3, opset=18, pooling="global", tlc_window=96, members=[], networks=1)


def test_a_record_reads_back_equal(tmp_path):
    write_record(tmp_path / EXPORT_RECORD, record())
    assert read_record(ExportRecord, tmp_path / EXPORT_RECORD) == record()
    assert json.loads((tmp_path / EXPORT_RECORD).read_text())["schema_version"] == 1
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, then moved


@pytest.mark.parametrize("change", [
    {"schema_version": 0},                  # an older writer
    {"view": {"mode": "tiled"}},            # a field this version does not know
    {"inference": {"tiling": {"tile": 64}}},  # no mode: never a silent default
])
def test_an_old_or_foreign_record_is_refused_naming_the_file_and_its_stage(tmp_path, change):
    raw = {**record().model_dump(mode="json"), **change}
    (tmp_path / EXPORT_RECORD).write_text(json.dumps(raw))
    with pytest.raises(StageFailed, match=rf"{tmp_path / EXPORT_RECORD} is not an ExportRecord .*dvc repro export"):
        read_record(ExportRecord, tmp_path / EXPORT_RECORD)


def test_a_missing_record_says_which_stage_writes_it(tmp_path):
    with pytest.raises(StageFailed, match="missing: run the export stage"):
        read_record(ExportRecord, tmp_path / EXPORT_RECORD)


def verdict(**change) -> dict:
    return {"gate_passed": True, "gate_reasons": [], "images": 4, "inference": {"mode": "tiled"},
            "validation": "hash", "psnr": 25.0, "ssim": 0.9, "identity_psnr": 20.0, "served_val_psnr": 25.0,
            "max_fp16_loss_db": 0.05, "ciede2000_mean": 6.5, "lpips": "not measured: no weights", **change}


def test_the_gates_verdict_keeps_its_other_scores_flat_beside_the_typed_fields(tmp_path):
    written = EvaluationRecord.model_validate(verdict())
    write_record(tmp_path / EVALUATION_RECORD, written)
    raw = json.loads((tmp_path / EVALUATION_RECORD).read_text())
    assert raw["ciede2000_mean"] == 6.5 and raw["psnr"] == 25.0  # `dvc metrics show` sees flat means
    back = read_record(EvaluationRecord, tmp_path / EVALUATION_RECORD)
    assert back == written and back.inference.mode == "tiled" and back.fp16_ok is None


@pytest.mark.parametrize("change", [
    {"gate_passed": None},                   # no verdict: never read as a pass
    {"inference": {"tiling": {"tile": 64}}},  # no mode
    {"schema_version": 2},                   # a newer writer
    {"psnr": "25 dB"},                       # a score that is not a number
])
def test_a_verdict_without_what_register_reads_is_refused(tmp_path, change):
    (tmp_path / EVALUATION_RECORD).write_text(json.dumps(verdict(**change)))
    with pytest.raises(StageFailed, match=rf"{tmp_path / EVALUATION_RECORD} is not an EvaluationRecord .*evaluate"):
        read_record(EvaluationRecord, tmp_path / EVALUATION_RECORD)


def test_version_metadata_from_before_the_schema_is_upgraded_and_without_a_spec_refused():
    from pydantic import ValidationError

    from components.records import VersionMetadata

    spec = {"mode": "global_view", "working_size": 384}
    oldest = {"tiling": {"tile": 256, "overlap": 32, "batch": 4}, "inference": spec, "input": "float32 NCHW RGB in [0,1]",
              "pooling": "global", "tlc_window": 384, "fp16": True, "fp16_loss_db": 0.001}
    upgraded = VersionMetadata.model_validate(oldest)
    assert upgraded.inference.mode == "global_view" and upgraded.train_pairs is None and upgraded.networks == 1
    stop_32 = {**oldest, "validation": "hash", "networks": 1, "train_pairs": ["a", "b"]}
    assert VersionMetadata.model_validate(stop_32).train_pairs == ["a", "b"]
    with pytest.raises(ValidationError):  # no spec: never a guessed mode
        VersionMetadata.model_validate({k: v for k, v in oldest.items() if k != "inference"})
    with pytest.raises(ValidationError):  # a versioned record is read as written
        VersionMetadata.model_validate({**stop_32, "schema_version": 1, "tiling": oldest["tiling"]})


@pytest.mark.parametrize("view", [None, {"mode": "tiles", "working_size": 384}, {"mode": "tiled"}])
def test_a_checkpoint_without_a_readable_view_is_refused_naming_it(tmp_path, view):
    """The weights' mode travels in model.pth as a typed view; a checkpoint saved before it
    existed, or by another writer, is named and not guessed to be tiled."""
    import torch

    from components.model.model_io import checkpoint_view, save_checkpoint
    from components.records import CheckpointView

    save_checkpoint(tmp_path / "good.pth", {}, {}, 64, CheckpointView(mode="global_view", working_size=384))
    assert checkpoint_view(tmp_path / "good.pth") == CheckpointView(mode="global_view", working_size=384)
    torch.save({"params": {}, "arch": {}, "patch_size": 64, **({"view": view} if view else {})}, tmp_path / "old.pth")
    with pytest.raises(ValueError, match=r"old\.pth records no readable mode.*train it again"):
        checkpoint_view(tmp_path / "old.pth")


def test_the_share_of_the_network_that_ships_is_the_best_held_out_one_and_a_tie_keeps_less():
    from components.records import NetworkVsPreset, TrainRecord

    check = NetworkVsPreset(pairs=10, network_psnr=22.0, preset_psnr=22.2,
                            scaled_psnr={0.0: 22.2, 0.5: 22.6, 1.0: 22.0})
    assert check.residual_scale == 0.5 and check.network_wins and check.gain_db == pytest.approx(-0.2)
    tied = check.model_copy(update={"scaled_psnr": {0.0: 22.2, 0.5: 22.2, 1.0: 22.0}})
    assert tied.residual_scale == 0.0 and not tied.network_wins  # no gain: the preset
    # a record from before the shares were tried: all or nothing, by the gain
    assert NetworkVsPreset(pairs=10, network_psnr=22.3, preset_psnr=22.2).residual_scale == 1.0
    # the shares survive run.json (JSON keys are strings)
    record = TrainRecord(run_id="r", network_vs_preset=check)
    assert TrainRecord.model_validate_json(record.model_dump_json()).network_vs_preset.scaled_psnr == check.scaled_psnr
