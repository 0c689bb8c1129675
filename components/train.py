"""Stage ``train``: NAFNet through BasicSR on the LMDBs, logged to an MLflow run.

Writes ``model.pth`` (weights + architecture), the resolved BasicSR options beside it, the
preset fitted on the train pairs (``preset.json``: the gate's baseline, and the prior of a
``tone_prior`` model), and
``run.json`` with the MLflow run id that evaluate and register add to. On one machine the weights
are byte-identical run to run, so DVC tracks those two files only: the run id and timings are
facts of this MLflow store, not of the model (run.json names the model's md5 to be checked
against; components/registry/tracking.py). dvc.yaml launches it
with torchrun (``train.nproc_per_node`` processes, DDP); every ``train.checkpoint_every``
iterations a resumable state goes to ``$BRIGHTHOUSE_HOME/train-states/``, keyed by options
and data, so a re-run after a crash (or an Airflow retry) continues where it stopped.
"""
from __future__ import annotations

import logging
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from components import small_set, warm_start
from components.config import TrainConfig
from components.data.lmdb_read import lmdb_shapes
from components.data.photo_crops import check_patch_fits
from components.data.splits import FOLDS_DIR, fold_dirs
from components.errors import StageFailed
from components.evaluation.train_monitor import progress_line, validation_hook
from components.model import basicsr_adapter, basicsr_options, out_of_sample
from components.model.distributed import Ranks, from_main, init_distributed, resolve_device, shutdown
from components.model.losses import check_vgg_weights
from components.model.model_io import save_checkpoint
from components.model.presets import PRESET_FILE, Preset, fit_preset
from components.model.train_state import fingerprint, load_state, save_atomic
from components.records import TRAIN_RECORD, CheckpointView, TrainRecord, write_json, write_record
from components.registry.tracking import (
    MODEL_MD5_TAG,
    file_md5,
    flatten,
    get_or_create_experiment,
    state_dir,
    use_tracking,
)
from components.stage import run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPaths:
    lmdb: Path
    out: Path


def check_patches_fit(lmdb_dir: Path, patch: int) -> None:
    """The loader would stop mid-run on a photo smaller than the patch; fail before training."""
    root = lmdb_dir / "train" / "gt.lmdb"
    try:
        check_patch_fits(lmdb_shapes(root), root, patch)
    except ValueError as exc:
        raise StageFailed(str(exc)) from exc


def check_inputs(cfg: TrainConfig, paths: TrainPaths) -> None:
    """What would otherwise fail minutes into training, checked before it starts."""
    if cfg.inference.mode == "tiled":
        check_patches_fit(paths.lmdb, cfg.patch_size)
    elif not (paths.lmdb / "train_whole" / "gt.lmdb" / "meta_info.txt").is_file():
        raise StageFailed(f"{paths.lmdb} has no train_whole/ (whole photos for inference.mode=global_view): "
                          "run the lmdb stage again (dvc repro lmdb)")
    if cfg.pretrained and not Path(cfg.pretrained).is_file():
        raise StageFailed(f"train.pretrained: {cfg.pretrained} does not exist")
    if cfg.perceptual_weight > 0:
        try:
            check_vgg_weights()
        except FileNotFoundError as exc:
            raise StageFailed(str(exc)) from exc


def fitted_preset(lmdb_dir: Path) -> Preset:
    """The strongest cheap preset on the training pairs (whole photos at ``lmdb.whole_photo_side``):
    the gate's baseline, and the prior a ``tone_prior`` model starts from."""
    from components.data.lmdb_read import iter_pairs

    split = lmdb_dir / "train_whole"
    split = split if split.is_dir() else lmdb_dir / "train"  # an LMDB from before global_view
    preset = fit_preset((lq, gt) for _, lq, gt in iter_pairs(split))
    log.info("preset fitted on the train pairs: %s (leave-one-out PSNR: %s)", preset.kind,
             ", ".join(f"{k} {v:.2f} dB" for k, v in preset.loo_psnr.items()) or "one pair")
    return preset


def network_prior(cfg: TrainConfig, preset: Preset) -> dict | None:
    """What goes in front of NAFNet: the preset, for ``tone_prior`` models. A tiled network sees
    tiles, whose own histograms say nothing of the photo's, so it takes the preset's curves."""
    if not cfg.tone_prior:
        return None
    kind = preset.kind if cfg.inference.mode == "global_view" else "curves"
    return preset.model_copy(update={"kind": kind}).model_dump(exclude={"loo_psnr"})


def run_train(cfg: TrainConfig, paths: TrainPaths) -> TrainRecord | None:
    """Train (as one rank of a torchrun job, if launched so); rank 0 logs and writes outputs.
    A cross-validated LMDB (``lmdb/folds/``) trains one model per fold first, each on the other
    folds, into ``out/folds/<i>/``: the gate scores them, and they decide what ships
    (``components/small_set.py``)."""
    check_inputs(cfg, paths)
    device = resolve_device(cfg.device)
    ranks = init_distributed(device)
    try:
        folds = fold_dirs(paths.lmdb)
        if ranks.is_main:  # always there (dvc.yaml tracks it), empty for a model trained on a val split
            shutil.rmtree(paths.out / FOLDS_DIR, ignore_errors=True)
            (paths.out / FOLDS_DIR).mkdir(parents=True)
        cfg, start_weights = warm_start.starting_point(cfg, paths.lmdb, paths.out, ranks)
        if not folds:
            return train_model(cfg, paths, device, ranks, start_weights=start_weights)
        return train_small_set(cfg, paths, folds, device, ranks)  # never warm: its folds are scored
    finally:
        shutdown()


def train_small_set(cfg: TrainConfig, paths: TrainPaths, folds: list[Path], device: str,
                    ranks: Ranks) -> TrainRecord | None:
    """The fold models; then, if a network over the preset beat it on the folds it did not see
    (or the model has no preset), one model on every pair or the fold models averaged
    (``train.ships``); if it did not, the preset of every pair."""
    trained = train_folds(cfg, paths, folds, device, ranks)
    records = [r for r in trained if r is not None]  # the main rank's
    check = small_set.check_fold_models(cfg, paths.out, folds) if ranks.is_main and cfg.tone_prior else None
    if not from_main(check is None or check.network_wins, ranks):
        if not ranks.is_main:
            return None
        preset = fitted_preset(paths.lmdb)
        prior = network_prior(cfg, preset)
        assert prior is not None and check is not None  # a tone_prior model was checked
        return small_set.ship_preset(cfg, paths.out, records, preset, prior, check)
    scale = check.residual_scale if check is not None else 1.0
    if scale < 1 and ranks.is_main:
        small_set.scale_fold_models(paths.out, len(folds), scale)
    if cfg.ships == "ensemble":
        return small_set.assemble_ensemble(cfg, paths.out, records, fitted_preset(paths.lmdb), check) \
            if ranks.is_main else None
    shipped = train_model(cfg, paths, device, ranks)  # every pair: lmdb's top-level train holds them all
    if shipped is None:  # another rank
        return None
    if scale < 1:
        small_set.scale_shipped(shipped.run_id, paths.out, scale)
    small_set.adopt_folds(shipped.run_id, records, "one network on every pair"
                          + (f", {scale:g} of its residual over the preset" if scale < 1 else ""))
    shipped = shipped.model_copy(update={"network_vs_preset": check})
    write_record(paths.out / TRAIN_RECORD, shipped)
    return shipped


def train_folds(cfg: TrainConfig, paths: TrainPaths, folds: list[Path], device: str,
                ranks: Ranks) -> list[TrainRecord | None]:
    """Fold i's model on the other folds, into ``out/folds/<i>/``, in its own MLflow run (its
    run.json is left out: DVC tracks folds/, and run ids differ on every run)."""
    member = cfg.model_copy(update={"iterations": cfg.fold_iterations or cfg.iterations})
    return [train_model(member, TrainPaths(d, paths.out / FOLDS_DIR / d.name), device, ranks,
                        {"brighthouse.fold": f"{d.name} of {len(folds)}"})
            for d in folds]


def train_model(cfg: TrainConfig, paths: TrainPaths, device: str, ranks: Ranks,
                tags: dict | None = None, start_weights: Path | None = None) -> TrainRecord | None:
    """One model on ``paths.lmdb``'s train split, into ``paths.out``; its own MLflow run (``tags``);
    from ``start_weights`` (a warm start) rather than scratch, where given."""
    preset = fitted_preset(paths.lmdb)
    prior = network_prior(cfg, preset)
    with ExitStack() as stack:
        held_out = prior is not None and cfg.out_of_sample_prior and cfg.inference.mode == "global_view"
        opt = basicsr_options.build_options(cfg, paths.lmdb, paths.out, device, ranks,
                                            out_of_sample.IDENTITY_PRIOR if held_out else prior, start_weights)
        if start_weights is not None:
            tags = {**(tags or {}), "brighthouse.started_from": cfg.start_from}
        state_path = state_dir() / "train-states" / f"{fingerprint(opt)}.pth"
        if held_out:  # a temporary file per process, kept out of the fingerprint and the saved options
            opt["datasets"]["train"].update({"type": "HeldOutPriorDataset", out_of_sample.DATASET_KEY: str(
                stack.enter_context(out_of_sample.priors_file(paths.lmdb, preset.kind)))})
        resume = load_state(state_path)
        if not ranks.is_main:
            basicsr_adapter.train(opt, basicsr_adapter.TrainHooks(resume=resume), ranks)
            return None
        return _train_logged(cfg, paths, opt, state_path, resume, ranks, preset, tags or {})


def _train_logged(cfg: TrainConfig, paths: TrainPaths, opt: dict, state_path: Path, resume: dict | None,
                  ranks: Ranks, preset: Preset, tags: dict) -> TrainRecord:
    import mlflow

    basicsr_options.save_options(opt, paths.out / "basicsr_options.yml")
    write_json(paths.out / PRESET_FILE, preset.model_dump())
    use_tracking()
    run_args = {"run_id": resume["run_id"]} if resume else {"experiment_id": get_or_create_experiment(cfg.experiment)}
    device, start = "cuda" if opt["num_gpu"] else "cpu", time.perf_counter()
    with mlflow.start_run(**run_args) as run:
        mlflow.log_params(flatten(cfg.model_dump(mode="json", exclude={"profiles"}), "train"))
        mlflow.set_tags({"device": device, "world_size": ranks.world_size,
                         "precision": opt["brighthouse"]["precision"], **{k: v for k, v in tags.items() if v}})
        hooks = _hooks(cfg, paths, run.info.run_id, state_path, resume, device)
        held_out = bool(opt["datasets"]["train"].get(out_of_sample.DATASET_KEY))
        if held_out:  # trained over the identity; validated and saved over the preset of every pair
            hooks.on_validate = out_of_sample.validated_with_prior(hooks.on_validate, preset)
        net, digests = basicsr_adapter.train(opt, hooks, ranks)
        if held_out:
            out_of_sample.install_prior(net, preset)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        mlflow.log_metric("train/seconds", seconds)
        save_checkpoint(paths.out / "model.pth", net.state_dict(), cfg.arch.model_dump(mode="json"), cfg.patch_size,
                        CheckpointView(mode=cfg.inference.mode, working_size=cfg.inference.working_size))
        mlflow.set_tag(MODEL_MD5_TAG, file_md5(paths.out / "model.pth"))
        mlflow.log_artifact(str(paths.out / "basicsr_options.yml"), artifact_path="config")
        mlflow.log_artifact(str(paths.out / "model.pth"), artifact_path="checkpoint")
    state_path.unlink(missing_ok=True)  # finished: nothing left to resume
    result = TrainRecord(run_id=run.info.run_id, device=device, seconds=round(seconds, 2), world_size=ranks.world_size,
                         rank_digests=digests, resumed_after=resume["iter"] if resume else 0)
    if "brighthouse.fold" not in tags:  # a fold's run is named in the ensemble's run.json
        write_record(paths.out / TRAIN_RECORD, result)
    return result


def _hooks(cfg: TrainConfig, paths: TrainPaths, run_id: str, state_path: Path, resume: dict | None,
           device: str) -> basicsr_adapter.TrainHooks:
    import mlflow

    def on_log(it: int, values: dict) -> None:
        log.info(progress_line(it, cfg.iterations, values))
        mlflow.log_metrics({f"train/{k}": v for k, v in values.items()}, step=it)

    def save_state(it: int, snapshot: dict) -> None:
        save_atomic({**snapshot, "run_id": run_id}, state_path)

    validate = validation_hook(paths.lmdb, cfg, device) if cfg.val_every else None
    return basicsr_adapter.TrainHooks(on_log, validate, cfg.val_every, save_state, cfg.checkpoint_every, resume)


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", TrainPaths, run_train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
