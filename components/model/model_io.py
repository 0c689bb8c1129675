"""Checkpoints that carry their architecture, and a PyTorch runner for ``tiling``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.inference.tiling import BatchFn
from components.model.curves_nafnet import CurvesNAFNet, kind_of
from components.model.ensemble import Ensemble
from components.model.nafnet_arch import NAFNet, use_local_pooling
from components.records import CheckpointView


def save_checkpoint(path: Path, state_dict: dict, arch: dict, patch_size: int, view: CheckpointView) -> None:
    """``view``: how the model sees a photo (mode, working size), for export's check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # BasicSR's convention ("params") so its own loaders can read the file too; the training
    # patch size sizes TLC's pooling window at inference.
    torch.save({"params": state_dict, "arch": arch, "patch_size": patch_size,
                "view": view.model_dump()}, path)


def save_ensemble(path: Path, member_paths: list[Path]) -> None:
    """One checkpoint holding every member's (``load_model`` builds an ``Ensemble``); the members
    share their architecture, patch size and view, so those are recorded once."""
    members = [torch.load(p, map_location="cpu", weights_only=True) for p in member_paths]
    first = members[0]
    if any(m["arch"] != first["arch"] or m["view"] != first["view"] for m in members):
        raise ValueError(f"ensemble members differ in architecture or view: {[str(p) for p in member_paths]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"members": [m["params"] for m in members], "arch": first["arch"], "patch_size": first["patch_size"],
                "view": first["view"]}, path)


RESIDUAL = "body.ending."  # CurvesNAFNet's last layer: zero, and the model is its preset alone


def scale_residual(path: Path, scale: float) -> None:
    """Scale the last layer of the ``CurvesNAFNet`` (or each ensemble member) saved at ``path``,
    so the model's output is its preset plus ``scale`` times what the network adds to it (the
    layer is linear, and NAFNet adds its input back after it). 0: exactly the preset."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for params in ckpt.get("members") or [ckpt["params"]]:
        if not any(k.startswith("curves.") for k in params):
            raise ValueError(f"{path} is not a network over a preset (train.tone_prior): "
                             "it has no residual to scale or switch off")
        for key in params:
            if key.startswith(RESIDUAL):
                params[key] = params[key] * scale if scale else torch.zeros_like(params[key])
    torch.save(ckpt, path)


def switch_off_residual(path: Path) -> None:
    """The model saved at ``path`` becomes exactly its preset, as an untrained one starts."""
    scale_residual(path, 0.0)


def is_preset_only(path: Path) -> bool:
    """Whether the checkpoint at ``path`` is a preset with its network switched off."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    residuals = [v for params in ckpt.get("members") or [ckpt["params"]]
                 for k, v in params.items() if k.startswith(RESIDUAL)]
    return bool(residuals) and all(not v.any() for v in residuals)


def checkpoint_view(path: Path) -> CheckpointView:
    """The mode (and working size) the weights were trained for."""
    from pydantic import ValidationError

    view = torch.load(path, map_location="cpu", weights_only=True).get("view")
    try:
        return CheckpointView.model_validate(view)
    except ValidationError:
        raise ValueError(f"{path} records no readable mode ({view!r}; saved before brighthouse recorded one, or "
                         "by another writer): train it again") from None


def tlc_window(path: Path, scale: float) -> int:
    """TLC's window: ``scale`` x the patch size the checkpoint was trained on (paper: 1.5)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return max(1, round(scale * ckpt["patch_size"]))


def load_model(path: Path, device: str = "cpu", tlc_window: int = 0) -> torch.nn.Module:
    """The checkpoint's NAFNet (or ensemble of them); ``tlc_window`` > 0 switches channel
    attention to local pooling."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "members" in ckpt:
        members = [_network(params, ckpt["arch"], tlc_window) for params in ckpt["members"]]
        return Ensemble(members).eval().to(device)
    return _network(ckpt["params"], ckpt["arch"], tlc_window).eval().to(device)


def _network(params: dict, arch: dict, tlc_window: int) -> torch.nn.Module:
    with_curves = any(k.startswith("curves.") for k in params)
    model: CurvesNAFNet | NAFNet
    if with_curves and "mix" not in params:  # saved before presets: curves alone
        model = CurvesNAFNet(**arch)
        params = {**model.state_dict(), **params}
    elif with_curves:
        model = CurvesNAFNet(preset={"kind": kind_of(params["mix"]), "curves": None, "target_quantiles": None},
                             **arch)
    else:
        model = NAFNet(**arch)
    model.load_state_dict(params)
    if tlc_window > 0:
        use_local_pooling(model.body if isinstance(model, CurvesNAFNet) else model, tlc_window)
    return model.eval()


def torch_runner(model: torch.nn.Module, device: str = "cpu") -> BatchFn:
    """A ``tiling.BatchFn`` running ``model`` without gradients."""

    @torch.inference_mode()
    def run(batch: np.ndarray) -> np.ndarray:
        out = model(torch.from_numpy(batch).to(device))
        return out.float().cpu().numpy()

    return run
