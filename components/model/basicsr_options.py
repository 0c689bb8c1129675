"""BasicSR's option dict, resolved from the typed train config: plain data in BasicSR's layout
(datasets, network, optimiser, schedule, losses), written beside the weights. Building it needs
no BasicSR import; ``basicsr_adapter`` is the module that runs it.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from components.config import TrainConfig
from components.model.distributed import ONE_PROCESS, Ranks, resolve_precision


def _whole_photo_dataset(cfg: TrainConfig, lmdb_dir: Path) -> dict:
    return {
        "name": "train", "type": "WholePhotoDataset", "phase": "train", "scale": 1,
        "dataroot_lq": str(lmdb_dir / "train_whole" / "lq.lmdb"),
        "dataroot_gt": str(lmdb_dir / "train_whole" / "gt.lmdb"),
        "gt_size": cfg.patch_size, "min_crop": cfg.min_crop, "exposure_stops": cfg.exposure_stops,
        "white_balance": cfg.white_balance,
        "batch_size_per_gpu": cfg.batch_size, "num_worker_per_gpu": cfg.num_workers,
        "dataset_enlarge_ratio": 1, "prefetch_mode": None,
    }


def _photo_crop_dataset(cfg: TrainConfig, lmdb_dir: Path) -> dict:
    return {
        "name": "train", "type": "PhotoCropDataset", "phase": "train", "scale": 1,
        "dataroot_lq": str(lmdb_dir / "train" / "lq.lmdb"),
        "dataroot_gt": str(lmdb_dir / "train" / "gt.lmdb"),
        "io_backend": {"type": "lmdb"}, "gt_size": cfg.patch_size, "crops_per_photo": cfg.crops_per_photo,
        # a batch item is one photo's crops_per_photo patches; the loop flattens them (_batches)
        "batch_size_per_gpu": cfg.batch_size // cfg.crops_per_photo, "num_worker_per_gpu": cfg.num_workers,
        "dataset_enlarge_ratio": 1, "prefetch_mode": None,
    }


def _network(cfg: TrainConfig, prior: dict | None) -> dict:
    if prior is None:
        return {"type": "NAFNet", **cfg.arch.model_dump()}
    return {"type": "CurvesNAFNet", "preset": prior, **cfg.arch.model_dump()}


def build_options(cfg: TrainConfig, lmdb_dir: Path, out_dir: Path, device: str, ranks: Ranks = ONE_PROCESS,
                  prior: dict | None = None, start_weights: Path | None = None) -> dict:
    """BasicSR's option dict, resolved from the typed train config (batch size is per rank).
    ``prior`` (a fitted preset: kind, curves, target quantiles) puts it in front of NAFNet
    (``CurvesNAFNet``); ``start_weights`` (a warm start's, without a preset) are loaded into the
    network and its EMA copy before the first step, in place of ``train.pretrained``."""
    tiled = cfg.inference.mode == "tiled"
    train_ds = _photo_crop_dataset(cfg, lmdb_dir) if tiled else _whole_photo_dataset(cfg, lmdb_dir)
    return {
        "name": "brighthouse", "model_type": "SRModel", "scale": 1, "is_train": True,
        "num_gpu": 1 if device == "cuda" else 0, "dist": ranks.distributed, "rank": ranks.rank,
        "world_size": ranks.world_size,
        "manual_seed": cfg.seed,
        "datasets": {"train": train_ds},
        "network_g": _network(cfg, prior),
        # strict=False: a pretrained checkpoint (e.g. NAFNet-SIDD) whose heads differ still loads;
        # BasicSR skips and logs the tensors whose shapes do not match (a warm start's arch is
        # checked equal first; it lacks only the preset's buffers, which keep the fitted ones)
        "path": {"pretrain_network_g": str(start_weights) if start_weights else cfg.pretrained or None,
                 "strict_load_g": False, "param_key_g": "params",
                 "resume_state": None,
                 "experiments_root": str(out_dir), "models": str(out_dir),
                 "training_states": str(out_dir / "training_states"), "log": str(out_dir)},
        "train": {
            "total_iter": cfg.iterations, "warmup_iter": -1,
            "optim_g": {"type": "AdamW", "lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": [0.9, 0.9]},
            "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [cfg.iterations],
                          "restart_weights": [1], "eta_min": cfg.eta_min},
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
            "ema_decay": cfg.ema_decay, **_perceptual(cfg),
        },
        "logger": {"print_freq": cfg.log_every, "use_tb_logger": False},
        # ours, not BasicSR's: applied by this module's training step
        "brighthouse": {"grad_clip": cfg.grad_clip, "colour_weight": cfg.colour_weight, "look_weight": cfg.look_weight,
                        "precision": resolve_precision(cfg.precision, device),
                        "channels_last": cfg.channels_last},
    }


def _perceptual(cfg: TrainConfig) -> dict:
    if cfg.perceptual_weight <= 0:
        return {}
    return {"perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1.0}, "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "criterion": "l1",
                               "perceptual_weight": cfg.perceptual_weight, "style_weight": 0.0}}


def save_options(opt: dict, path: Path, transient: tuple[str, ...] = ("out_of_sample_priors",)) -> None:
    """The options as a file DVC tracks: without the dataset's per-process temporary paths."""
    train = {k: v for k, v in opt["datasets"]["train"].items() if k not in transient}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**opt, "datasets": {**opt["datasets"], "train": train}}, sort_keys=False),
                    encoding="utf-8")
