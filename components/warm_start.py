"""Retraining that builds on a registered version instead of starting from zero.

``train.start_from`` names the version; the retrain DAG writes the champion's there for each
delivery (``choose_start``). Training then loads that version's weights (the EMA copy its run
logged and exported) into a network over the preset fitted on the current pairs, and trains on
the whole current set for ``train.warm_start``'s share of the iterations and learning rate, on
a cosine schedule of its own.

- Reproducible: the version is a param, so ``dvc.lock`` records what a model started from and
  ``dvc repro`` retrains when it changes; ``start.json`` (tracked) records the md5 of the
  weights loaded, which their training run's ``model_md5`` tag must match.
- Honest: the gate never scores a model on pairs its line learned from. A version records the
  pairs it and its ancestors trained on (``inherited_pairs``, into its ``train_pairs``); where
  any of them is held out now (a hash split's small-set bounds can move a pair), or the set is
  cross-validated (fold models would be scored on pairs the champion learned from), training
  starts from scratch instead.
- Otherwise too (no such version, another architecture or mode, an ensemble, the preset alone,
  no checkpoint), it starts from scratch and says why in one log line and in ``start.json``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from components.config import TrainConfig, load_params
from components.data.splits import SPLITS_FILE, SplitRecord, read_splits
from components.model.distributed import Ranks, from_main
from components.records import START_RECORD, StartRecord, VersionMetadata, write_record
from components.registry.model_store import ModelUnusable, NoModelError, alias_version, registered_version
from components.registry.tracking import MODEL_MD5_TAG, file_md5, state_dir, store_uri
from components.registry.tracking import client as tracking_client

log = logging.getLogger(__name__)
PRIOR = ("curves.", "histogram.", "mix")  # CurvesNAFNet's preset buffers: refitted on the current pairs


def warm_config(cfg: TrainConfig) -> TrainConfig:
    """The recipe of a warm start: the profile's, for a share of its iterations and learning rate."""
    share = cfg.warm_start
    return cfg.model_copy(update={"iterations": max(1, round(cfg.iterations * share.iterations_share)),
                                  "lr": cfg.lr * share.lr_share})


def weights_path(cfg: TrainConfig) -> Path:
    """Where the main rank leaves the starting weights for every rank (BasicSR loads them)."""
    return state_dir() / "warm-starts" / f"{cfg.registry.model_name}-v{cfg.start_from}.pth"


def starting_point(cfg: TrainConfig, lmdb_dir: Path, out: Path, ranks: Ranks) -> tuple[TrainConfig, Path | None]:
    """What this training starts from, decided by the main rank and recorded in ``out/start.json``:
    (the config to train with, the weights to load first, or None for scratch) on every rank."""
    record = None
    if ranks.is_main:  # a full retrain needs no split (bench layouts have none)
        record = resolve_start(cfg, read_splits(lmdb_dir / SPLITS_FILE)) if cfg.start_from else \
            scratch(cfg, "train.start_from is empty: a full retrain")
    if record is not None:
        write_record(out / START_RECORD, record)
    if from_main(record is not None and record.version is not None, ranks):
        return warm_config(cfg), weights_path(cfg)
    return cfg, None


def scratch(cfg: TrainConfig, reason: str) -> StartRecord:
    log.info("training from scratch: %s", reason)
    return StartRecord(version=None, reason=reason, iterations=cfg.iterations, lr=cfg.lr)


def resolve_start(cfg: TrainConfig, split: SplitRecord) -> StartRecord:
    """The start ``cfg.start_from`` asks for, if it can be honest and fits; its weights go to
    ``weights_path(cfg)``. A registry that does not answer raises: a fault, not a reason."""
    version = cfg.start_from
    if not version:
        return scratch(cfg, "train.start_from is empty: a full retrain")
    if split.cross_validated:
        return scratch(cfg, f"version {version} is not fine-tuned on a cross-validated set: each fold model would "
                            f"be scored on pairs version {version} learned from")
    try:
        metadata, run_id = registered_version(cfg.registry.model_name, version)
    except (NoModelError, ModelUnusable) as exc:
        return scratch(cfg, f"cannot start from version {version}: {exc}")
    unfit = unsuitable(cfg, metadata, split) or fetch_weights(cfg, run_id)
    if unfit:
        return scratch(cfg, f"version {version} {unfit}")
    warm = warm_config(cfg)
    reason = (f"its weights (run {run_id}) fine-tuned on all {len(split.train)} train pairs for {warm.iterations} "
              f"iterations at lr {warm.lr:g}")
    log.info("warm start from version %s: %s", version, reason)
    return StartRecord(version=version, reason=reason, weights_md5=file_md5(weights_path(cfg)),
                       fine_tunes=metadata.fine_tunes + 1, inherited_pairs=sorted(metadata.train_pairs or []),
                       iterations=warm.iterations, lr=warm.lr)


def unsuitable(cfg: TrainConfig, metadata: VersionMetadata, split: SplitRecord) -> str | None:
    """Why the version cannot start this training (its record alone), or None."""
    if metadata.networks != 1:
        return "is the preset alone, with no network to fine-tune" if metadata.networks == 0 else \
            f"is an ensemble of {metadata.networks} networks, not one to fine-tune"
    if metadata.inference.mode != cfg.inference.mode:
        return f"serves {metadata.inference.mode}; this training is for {cfg.inference.mode}"
    if metadata.train_pairs is None:
        return "does not record the pairs it learned from, so the gate could not keep them out"
    held_out = sorted(set(metadata.train_pairs) & set(split.val))
    if held_out:
        return (f"learned from {len(held_out)} pair(s) held out now ({', '.join(held_out[:3])}): "
                "the gate would score its fine-tune on them")
    return None


def fetch_weights(cfg: TrainConfig, run_id: str) -> str | None:
    """The version's checkpoint from its training run, checked against ``cfg``, written without
    its preset to ``weights_path(cfg)``; why it cannot be used, or None."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="brighthouse-warm-") as tmp:
        try:
            got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="checkpoint/model.pth",
                                                           dst_path=tmp, tracking_uri=store_uri()))
        except (MlflowException, OSError) as exc:
            return f"has no checkpoint/model.pth in its training run {run_id}: {str(exc).splitlines()[0][:200]}"
        logged = tracking_client().get_run(run_id).data.tags.get(MODEL_MD5_TAG)
        if logged != file_md5(got):
            return f"has a checkpoint whose md5 is not the one its run {run_id} logged ({logged})"
        ckpt = torch.load(got, map_location="cpu", weights_only=True)
    unfit = "has an ensemble checkpoint" if "members" in ckpt else mismatch(cfg, ckpt.get("arch"), ckpt["params"])
    if unfit:
        return unfit
    write_start_weights(ckpt["params"], weights_path(cfg))
    return None


def write_start_weights(params: Mapping[str, torch.Tensor], dest: Path) -> None:
    """A checkpoint's network without its preset, in BasicSR's layout, where every rank loads it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {k: v for k, v in params.items() if not k.startswith(PRIOR)}}, dest.with_suffix(".tmp"))
    dest.with_suffix(".tmp").replace(dest)


def mismatch(cfg: TrainConfig, arch: object, weights: Iterable[str]) -> str | None:
    """Why a checkpoint's network (its recorded ``arch``, its ``weights``' names) is not the one
    ``cfg`` trains, or None."""
    if arch != cfg.arch.model_dump(mode="json"):
        return f"has another architecture ({arch}; this training: {cfg.arch.model_dump(mode='json')})"
    over_preset = any(k.startswith("curves.") for k in weights)
    if over_preset != cfg.tone_prior:
        kind = "a network over a preset" if over_preset else "a plain network"
        return f"is {kind}; train.tone_prior is {cfg.tone_prior}"
    return None


class StartChoice(BaseModel):
    """What the retrain DAG asked this delivery's training to start from, and why."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    start_from: str  # "" = from scratch
    reason: str


def choose_start(params_path: Path, full_retrain: bool) -> StartChoice:
    """The start for a delivery: the champion, fine-tuned, unless a person asked for a full
    retrain, ``train.warm_start.for_deliveries`` is off, there is no champion, or the line is
    ``full_every`` deep (so fine-tunes do not drift)."""
    cfg = load_params(params_path).train
    reg, every = cfg.registry, cfg.warm_start.full_every
    if full_retrain:
        return StartChoice(start_from="", reason="a full retrain was asked for (DAG param full_retrain)")
    if not cfg.warm_start.for_deliveries:
        return StartChoice(start_from="", reason="train.warm_start.for_deliveries is false")
    try:
        champion = alias_version(reg.model_name, reg.champion_alias)
    except NoModelError:
        return StartChoice(start_from="", reason=f"no {reg.champion_alias} to start from yet")
    try:
        depth = registered_version(reg.model_name, champion)[0].fine_tunes
    except ModelUnusable as exc:
        return StartChoice(start_from="", reason=f"the {reg.champion_alias}'s record is unreadable: {exc}")
    if depth + 1 >= every:
        return StartChoice(start_from="", reason=f"the {reg.champion_alias} (version {champion}) is {depth} fine-tunes "
                                                 f"from a full retrain: every {every}th training is one")
    return StartChoice(start_from=champion, reason=f"fine-tune the {reg.champion_alias}, version {champion}")
