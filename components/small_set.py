"""What ships from a cross-validated small set, once its fold models have trained.

Under ``lmdb.cross_validate_below`` pairs, every pair trains: fold i's model learns from the
other folds, and the gate scores it on fold i. Those fold models first answer one question
(``evaluation/preset_check.py``): does a network trained on these pairs beat the preset it
starts from, on pairs it did not see?
- Yes: one more model trains on every pair (``train.ships: full``), or the fold models ship
  averaged (``ensemble``). What the network adds over the preset ships at the share
  (``train.residual_scales``) that scored best on the folds: a few pairs often teach a network
  half right, and half of its residual then beats both all of it and none (a variance cut whose
  size these pairs choose). The fold models are scaled the same, so the gate scores what ships.
- No: the preset of every pair ships, as a network whose residual is switched off (how an
  untrained model starts), and the fold models are switched off the same way, so the gate's
  cross-validated scores are of what ships. A client whose look a preset already makes as well
  as a network can learn from their pairs gets that preset, not a worse model, and not nothing.
Each shipped model has one MLflow run, with the fold models' runs under it.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from components.config import TrainConfig
from components.data.splits import FOLDS_DIR
from components.evaluation.preset_check import network_vs_preset
from components.model.curves_nafnet import CurvesNAFNet
from components.model.model_io import save_checkpoint, save_ensemble, scale_residual, switch_off_residual
from components.model.presets import PRESET_FILE, Preset
from components.records import TRAIN_RECORD, CheckpointView, NetworkVsPreset, TrainRecord, write_json, write_record
from components.registry.tracking import MODEL_MD5_TAG, file_md5, flatten, get_or_create_experiment, use_tracking

log = logging.getLogger(__name__)
SHIPS_TAG = "brighthouse.ships"
SCALE_TAG = "brighthouse.residual_scale"  # the share of its network a model ships with


def fold_models(out: Path, k: int) -> list[Path]:
    return [out / FOLDS_DIR / str(i) / "model.pth" for i in range(k)]


def check_fold_models(cfg: TrainConfig, out: Path, folds: list[Path]) -> NetworkVsPreset:
    """The fold models in ``out/folds/`` against their presets, each on its held-out fold."""
    check = network_vs_preset(fold_models(out, len(folds)), folds, cfg.inference, cfg.residual_scales)
    log.info("fold models on the %d pairs they did not train on: %.2f dB, their presets %.2f dB (%+.2f dB); "
             "by share of the network: %s: %s", check.pairs, check.network_psnr, check.preset_psnr, check.gain_db,
             ", ".join(f"{s:g} {v:.2f}" for s, v in check.scaled_psnr.items()),
             f"{check.residual_scale:g} of a network ships" if check.network_wins else "the preset ships")
    return check


def scale_fold_models(out: Path, k: int, scale: float) -> None:
    """The fold models at the share of their network that ships, so the gate scores what ships."""
    for member in fold_models(out, k):
        scale_residual(member, scale)


def scale_shipped(run_id: str, out: Path, scale: float) -> None:
    """``out/model.pth``, which its run ``run_id`` logged, with its residual scaled; the run's copy
    and weights md5 follow it (register finds the run by that md5)."""
    import mlflow

    scale_residual(out / "model.pth", scale)
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({MODEL_MD5_TAG: file_md5(out / "model.pth"), SCALE_TAG: f"{scale:g}"})
        mlflow.log_artifact(str(out / "model.pth"), artifact_path="checkpoint")


def new_run(cfg: TrainConfig, ships: str) -> str:
    """An MLflow run for a model assembled from the fold models (an ensemble, the preset);
    ``ships`` says what it is."""
    import mlflow

    use_tracking()
    with mlflow.start_run(experiment_id=get_or_create_experiment(cfg.experiment)) as run:
        mlflow.log_params(flatten(cfg.model_dump(mode="json", exclude={"profiles"}), "train"))
        mlflow.set_tag(SHIPS_TAG, ships)
    return run.info.run_id


def adopt_folds(parent: str, folds: list[TrainRecord], ships: str | None = None) -> None:
    """The fold models' runs under ``parent`` in the MLflow UI; what ships, on the parent."""
    from components.registry.tracking import client

    for fold in folds:
        client().set_tag(fold.run_id, "mlflow.parentRunId", parent)
    if ships:
        client().set_tag(parent, SHIPS_TAG, ships)


def _finish(run_id: str, out: Path, folds: list[TrainRecord], **record: object) -> TrainRecord:
    """Log the assembled ``out/model.pth`` in ``run_id`` and write its run.json."""
    import mlflow

    seconds = round(sum(f.seconds for f in folds), 2)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metric("train/seconds", seconds)
        mlflow.set_tag(MODEL_MD5_TAG, file_md5(out / "model.pth"))
        mlflow.log_artifact(str(out / "model.pth"), artifact_path="checkpoint")
    adopt_folds(run_id, folds)
    result = TrainRecord(run_id=run_id, device=folds[0].device, seconds=seconds, world_size=folds[0].world_size,
                         resumed_after=[f.resumed_after for f in folds if isinstance(f.resumed_after, int)],
                         **record)
    write_record(out / TRAIN_RECORD, result)
    return result


def assemble_ensemble(cfg: TrainConfig, out: Path, folds: list[TrainRecord], preset: Preset,
                      check: NetworkVsPreset | None) -> TrainRecord:
    """The fold models as one checkpoint, with the options and the preset of all the pairs beside it."""
    members = fold_models(out, len(folds))
    save_ensemble(out / "model.pth", members)
    shutil.copyfile(members[0].parent / "basicsr_options.yml", out / "basicsr_options.yml")
    write_json(out / PRESET_FILE, preset.model_dump())
    run_id = new_run(cfg, f"an ensemble of the {len(folds)} fold models")
    log.info("ensemble of %d fold models", len(folds))
    return _finish(run_id, out, folds, members=[f.run_id for f in folds], network_vs_preset=check, ships="ensemble")


def ship_preset(cfg: TrainConfig, out: Path, folds: list[TrainRecord], preset: Preset, prior: dict,
                check: NetworkVsPreset) -> TrainRecord:
    """The preset of every pair, as an untrained network over it (its residual zero), and the
    fold models switched off, so the gate scores the fold presets as this model serves them."""
    torch.manual_seed(cfg.seed)  # the same bytes on every run: DVC tracks model.pth
    model = CurvesNAFNet(preset=prior, **cfg.arch.model_dump())
    save_checkpoint(out / "model.pth", model.state_dict(), cfg.arch.model_dump(mode="json"), cfg.patch_size,
                    CheckpointView(mode=cfg.inference.mode, working_size=cfg.inference.working_size))
    for member in fold_models(out, len(folds)):
        switch_off_residual(member)
    shutil.copyfile(out / FOLDS_DIR / "0" / "basicsr_options.yml", out / "basicsr_options.yml")
    write_json(out / PRESET_FILE, preset.model_dump())
    why = (f"the preset: the fold models scored {check.network_psnr:.2f} dB on the {check.pairs} pairs they did not "
           f"train on, their presets {check.preset_psnr:.2f} dB ({check.gain_db:+.2f} dB)")
    log.warning("no network ships: %s", why)
    run_id = new_run(cfg, why)
    return _finish(run_id, out, folds, network_vs_preset=check, ships="preset")
