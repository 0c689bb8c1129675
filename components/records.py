"""What one step hands another: typed records, written atomically, read back checked.

A record has one writer and its readers; each carries a schema version, so a file from an
older or foreign writer is refused with a message naming it, never half-read with defaults.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from components.config import InferenceSpec
from components.errors import StageFailed


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as JSON at ``path``, through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    WRITER: ClassVar[str] = "?"  # the stage that writes it: what a refusal tells the user to run again


EXPORT_RECORD = "export.json"  # in export's output folder


class ExportRecord(Record):
    """``artifacts/export/export.json``: what export wrote and checked. Read by evaluate (the
    spec, the variants to measure, the fold models) and register (the served model's facts)."""
    WRITER: ClassVar[str] = "export"
    schema_version: Literal[1] = 1
    onnx: str
    inference: InferenceSpec                 # the spec the ONNX was checked under (params.yaml's)
    max_abs_diff: dict[str, float]           # |onnxruntime - PyTorch| per check input
    atol: float
    opset: int
    pooling: Literal["global", "tlc"]
    tlc_window: int
    fp16_onnx: str | None = None             # beside model.onnx, for GPU serving
    fp16_max_abs_diff: dict[str, float] | None = None
    members: list[str]                       # fold models' ONNX (cross-validated sets), relative paths
    networks: int                            # networks in the served ONNX (an ensemble has several)


R = TypeVar("R", bound=Record)


def write_record(path: Path, record: Record) -> None:
    write_json(path, record.model_dump(mode="json"))


def read_record(kind: type[R], path: Path) -> R:
    """The record at ``path``, or a StageFailed naming the file and the stage that writes it."""
    try:
        return kind.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageFailed(f"{path} is missing: run the {kind.WRITER} stage (dvc repro {kind.WRITER})") from None
    except ValidationError as exc:
        raise StageFailed(f"{path} is not an {kind.__name__} this version reads (from an older or foreign "
                          f"{kind.WRITER} stage?): run {kind.WRITER} again (dvc repro {kind.WRITER}); "
                          f"{exc.error_count()} problem(s), first: {exc.errors()[0]['loc']} "
                          f"{exc.errors()[0]['msg']}") from None
