"""NAFNet on top of fitted tone curves: the network learns what global curves miss.

Per-channel tone curves fitted on the training pairs (``components/model/baseline.py``) are the
classical baseline every model must beat. ``CurvesNAFNet`` applies them first, as a fixed
layer, and NAFNet (which starts as the identity) learns the residual edit from there: the
untrained model already scores the baseline, and training only has to add to it. The curves
are a buffer, saved with the weights and exported inside the ONNX graph.
"""
from __future__ import annotations

import torch
from torch import nn

from components.model.nafnet_arch import NAFNet

LEVELS = 256


class ToneCurves(nn.Module):
    """Per-channel curves over 256 levels, linearly interpolated between levels (ONNX: Gather)."""

    def __init__(self, curves: torch.Tensor | None = None) -> None:
        super().__init__()
        identity = torch.linspace(0, 1, LEVELS).repeat(3, 1)
        self.register_buffer("lut", (identity if curves is None else torch.as_tensor(curves)).float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = x.clamp(0, 1) * (LEVELS - 1)
        lo = pos.floor().clamp(max=LEVELS - 2)
        frac = pos - lo
        index = lo.long() + (torch.arange(3, device=x.device) * LEVELS).view(1, 3, 1, 1)
        flat = self.lut.reshape(-1)
        below, above = flat[index], flat[index + 1]
        return below + (above - below) * frac


class CurvesNAFNet(nn.Module):
    def __init__(self, tone_curves: list | None = None, **arch) -> None:
        super().__init__()
        self.curves = ToneCurves(None if tone_curves is None else torch.tensor(tone_curves))
        self.body = NAFNet(**arch)
        # the residual starts at zero, so the untrained model is exactly the fitted curves
        nn.init.zeros_(self.body.ending.weight)
        nn.init.zeros_(self.body.ending.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.curves(x))


def register_curves_nafnet() -> None:
    """Register in BasicSR's ARCH_REGISTRY (idempotent; explicit, not import-time)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    if "CurvesNAFNet" not in ARCH_REGISTRY:
        ARCH_REGISTRY.register(CurvesNAFNet)
