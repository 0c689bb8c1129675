"""What a person watches during training: a progress line with ETA, validation PSNR every
``train.val_every`` iterations and a sample triptych (input | output | target) in MLflow."""
from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from components.config import TrainConfig
from components.data.lmdb_read import iter_pairs
from components.evaluation.metrics import psnr
from components.inference.modes import enhance
from components.inference.tiling import to_uint8
from components.model.model_io import torch_runner

TRIPTYCH_WIDTH = 1536  # px; full-resolution triptychs would be 10k px wide


def progress_line(it: int, total: int, values: dict) -> str:
    losses = " ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "it_per_s")
    rate = values.get("it_per_s", 0.0)
    eta = datetime.timedelta(seconds=round((total - it) / rate)) if rate > 0 else "?"
    return f"iter {it}/{total} ({100 * it // total}%) {losses} | {rate:.2f} it/s, ETA {eta}"


def triptych(lq: np.ndarray, out: np.ndarray, gt: np.ndarray) -> np.ndarray:
    strip = Image.fromarray(np.concatenate([to_uint8(lq), to_uint8(out), to_uint8(gt)], axis=1))
    if strip.width > TRIPTYCH_WIDTH:
        strip = strip.resize((TRIPTYCH_WIDTH, round(strip.height * TRIPTYCH_WIDTH / strip.width)))
    return np.asarray(strip)


def validation_hook(lmdb_dir: Path, cfg: TrainConfig, device: str) -> Callable[[int, torch.nn.Module], None]:
    """Scores the first ``cfg.val_images`` val photos at full resolution as served (``cfg.inference``), and
    logs ``train_val/psnr`` and the first photo's triptych at the iteration."""
    import mlflow

    pairs = list(itertools.islice(iter_pairs(lmdb_dir / "val"), cfg.val_images))

    def on_validate(it: int, net: torch.nn.Module) -> None:
        was_training = net.training
        run = torch_runner(net.eval(), device)
        scores = []
        for i, (key, lq, gt) in enumerate(pairs):
            out = enhance(lq, run, cfg.inference)
            scores.append(psnr(out, gt))
            if i == 0:
                mlflow.log_image(triptych(lq, out, gt), key=f"samples/{key}", step=it)
        mlflow.log_metric("train_val/psnr", float(np.mean(scores)), step=it)
        net.train(was_training)

    return on_validate
