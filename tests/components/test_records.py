"""Typed records between stages: written whole, read back checked, a foreign file named."""
import json

import pytest

from components.config import InferenceSpec
from components.errors import StageFailed
from components.records import EXPORT_RECORD, ExportRecord, read_record, write_record


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
