"""Checkpoints that carry their architecture, and a PyTorch runner for ``tiling``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.nafnet_arch import NAFNet


def save_checkpoint(path: Path, state_dict: dict, arch: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # BasicSR's convention ("params") so its own loaders can read the file too.
    torch.save({"params": state_dict, "arch": arch}, path)


def load_model(path: Path, device: str = "cpu") -> torch.nn.Module:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = NAFNet(**ckpt["arch"])
    model.load_state_dict(ckpt["params"])
    return model.eval().to(device)


def torch_runner(model: torch.nn.Module, device: str = "cpu"):
    """A ``tiling.BatchFn`` running ``model`` without gradients."""

    @torch.inference_mode()
    def run(batch: np.ndarray) -> np.ndarray:
        out = model(torch.from_numpy(batch).to(device))
        return out.float().cpu().numpy()

    return run
