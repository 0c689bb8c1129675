"""What one step hands another: typed records, written atomically, read back checked.

A record has one writer and its readers; each carries a schema version, so a file from an
older or foreign writer is refused with a message naming it, never half-read with defaults.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from components.config import InferenceSpec, Mode
from components.errors import StageFailed


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as JSON at ``path``, through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


class CheckpointView(BaseModel):
    """How a checkpoint's weights see a photo: the inference mode they were trained for and its
    working size. Written by train into ``model.pth`` as a plain dict (``torch.load`` with
    ``weights_only`` reads no classes), read by export, which refuses weights of another mode."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: Mode
    working_size: int


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    WRITER: ClassVar[str] = "?"  # the stage that writes it: what a refusal tells the user to run again


class NetworkVsPreset(BaseModel):
    """A cross-validated set's fold models, as served, on the folds they did not train on,
    against the same models with their residual switched off (their preset, through the same
    transfer): whether a network trained on these pairs beats the preset it starts from."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    pairs: int
    network_psnr: float
    preset_psnr: float
    # the same, with each fold model's residual over its preset scaled by each of train.residual_scales
    # (0: the preset, 1: the network as trained); the best scale is what ships
    scaled_psnr: dict[float, float] = {}

    @property
    def gain_db(self) -> float:
        return self.network_psnr - self.preset_psnr

    @property
    def residual_scale(self) -> float:
        """The network's share that scored best on the held-out pairs (ties: the smaller)."""
        if not self.scaled_psnr:
            return 1.0 if self.gain_db > 0 else 0.0
        return max(sorted(self.scaled_psnr), key=self.scaled_psnr.__getitem__)

    @property
    def network_wins(self) -> bool:
        return self.residual_scale > 0


TRAIN_RECORD = "run.json"  # beside the weights; not tracked by DVC (run ids are facts of one MLflow store)


class TrainRecord(Record):
    """``artifacts/train/run.json``: the MLflow run that trained ``model.pth``, and how. Read by
    evaluate and register (through ``tracking.training_run``) to log into that run."""
    WRITER: ClassVar[str] = "train"
    schema_version: Literal[1] = 1
    run_id: str
    device: str = "unknown"           # unknown: recovered from the store by the weights' md5
    seconds: float = 0.0
    world_size: int = 1
    rank_digests: list[str] = []      # each rank's weight digest (DDP keeps them equal)
    resumed_after: int | list[int] = 0  # iteration resumed after (per fold model for an ensemble)
    members: list[str] = []           # an ensemble's fold models' runs
    # cross-validated tone_prior sets: the fold models against their presets (what decided what ships)
    network_vs_preset: NetworkVsPreset | None = None
    ships: Literal["network", "ensemble", "preset"] = "network"


START_RECORD = "start.json"  # beside the weights; tracked by DVC (register reads it)


class StartRecord(Record):
    """``artifacts/train/start.json``: what training started from (``components/warm_start.py``).
    Read by register, which records the parent in the version's lineage."""
    WRITER: ClassVar[str] = "train"
    schema_version: Literal[1] = 1
    version: str | None             # the registered version fine-tuned; None: from scratch
    reason: str                     # why warm, or why not
    weights_md5: str | None = None  # of the version's checkpoint, as its training run logged it
    fine_tunes: int = 0             # fine-tunes since the line last trained from scratch
    inherited_pairs: list[str] = []  # the pairs the starting weights already learned from
    iterations: int                 # what this training ran
    lr: float


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
    networks: int                            # networks served (an ensemble has several; 0: the preset alone)


EVALUATION_RECORD = "metrics.json"  # in evaluate's output folder (DVC shows it: `dvc metrics show`)

Score = float | int | str | bool | None | list | dict


class EvaluationRecord(Record):
    """``artifacts/evaluate/metrics.json``: the gate's verdict and what it judged. Read by
    register (what the version records) and the pipeline runner (a refusal is an outcome).
    The fields below are what they read; the gate's other means (CIEDE2000, the retoucher's
    checks, the champion's and the variants' scores) stay flat beside them, as scores."""
    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, Score]
    WRITER: ClassVar[str] = "evaluate"
    schema_version: Literal[1] = 1
    gate_passed: bool
    gate_reasons: list[str]
    images: int
    inference: InferenceSpec                 # the spec the gate scored (export's)
    validation: str                          # the split's scheme: hash | kfold
    psnr: float
    ssim: float
    identity_psnr: float
    served_val_psnr: float                   # the served model on the val pairs (runtime comparisons)
    max_fp16_loss_db: float
    fp16_ok: bool | None = None              # None: no FP16 variant was exported
    fp16_loss_db: float | None = None
    folds: list[dict[str, Score]] = []       # cross-validated sets: one summary per fold


VALIDATION_RECORD = "report.json"  # validate's output (artifacts/validate/), and each ingest's report folder


class PairFailure(BaseModel):
    """One pair validation refused, and why, in words a person can act on."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    pair_id: str
    input: str | None                        # None: the pair has no input file
    target: str | None                       # None: the pair has no target file
    unread: bool                             # refused before any of its bytes were read (unsafe id or path)
    reasons: list[str]
    detail: str


class ValidationPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    modes: str
    on_failure: str
    max_megapixels: float                    # the pixel limit the pairs were accepted under (lmdb decodes with it)


class ValidationReport(Record):
    """The pair suite's verdict on a folder: written by validate (read by lmdb: which pairs,
    under which pixel limit) and by each delivery's ingest (read by the CLI and the DAG)."""
    WRITER: ClassVar[str] = "validate"
    schema_version: Literal[1] = 1
    folder: str
    policy: ValidationPolicy
    pairs: int
    failed: int
    failures: list[PairFailure]
    accepted: list[str]
    notes: dict[str, list[str]]              # pair id -> what was converted or noticed
    hashes: dict[str, str]                   # pair id -> its target's 64-bit dHash (hex)


class VersionMetadata(Record):
    """What register records with each model version (its MLmodel's ``metadata``): how
    serving, evaluation and the review run it, and which pairs it learned from. Read wherever a
    registered version is used (``registry.model_store.fetch``)."""
    WRITER: ClassVar[str] = "register"
    schema_version: Literal[1] = 1
    inference: InferenceSpec                 # the spec the gate scored; serving runs exactly this
    input: str                               # what the ONNX takes
    pooling: Literal["global", "tlc"]
    tlc_window: int
    fp16: bool                               # an FP16 ONNX ships beside it (it lost under the gate's limit)
    fp16_loss_db: float | None = None
    validation: str                          # how the gate held pairs out: hash | kfold (unknown: registered before)
    networks: int                            # networks in the ONNX (an ensemble has several; 0: the preset alone)
    # a later gate scores this version only on pairs it did not train on; None: registered before
    # versions recorded them (the gate then compares it on a hash split's val pairs only)
    train_pairs: list[str] | None
    started_from: str | None = None  # the version fine-tuned into this one (None: trained from scratch)
    fine_tunes: int = 0              # fine-tunes since the line last trained from scratch

    @model_validator(mode="before")
    @classmethod
    def _upgrade_unversioned(cls, data: object) -> object:
        """Versions registered before this record had a schema keep serving after an upgrade:
        their metadata said the same things without a number (and a copy of the tiling). The
        oldest lacked validation, networks and train_pairs: single networks, pairs unknown.
        Without an inference spec nothing is guessed: refused."""
        if not isinstance(data, dict) or "schema_version" in data or "inference" not in data:
            return data
        legacy = {"validation": "unknown", "networks": 1, "train_pairs": None}
        return {**legacy, **{k: v for k, v in data.items() if k != "tiling"}, "schema_version": 1}


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
