"""NAFNet on top of the fitted preset: the network learns what the preset misses.

The strongest cheap preset fitted on the training pairs (``components/model/presets.py``:
tone curves, histogram matching to the targets' look, their blend, with or without grey-world
balance) is the baseline every model must beat. ``CurvesNAFNet`` applies it first, as a fixed
layer, and NAFNet (which starts as the identity) learns the residual edit from there: the
untrained model already scores about the baseline, and training only has to add to it. The
preset is buffers (curves, target quantiles, mix), saved with the weights and exported inside
the ONNX graph; histogram matching measures each photo's own quantiles, so a global-view model
adapts the preset to the photo it sees.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from components.model.baseline import LEVELS
from components.model.nafnet_arch import NAFNet


class ToneCurves(nn.Module):
    """Per-channel curves over 256 levels, linearly interpolated between levels (ONNX: Gather)."""

    lut: torch.Tensor

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


QUANTILES = 65
# (weight of the curves, weight of the histogram match, grey-world strength) per preset kind
MIXES = {"curves": (1.0, 0.0, 0.0), "histogram": (0.0, 1.0, 0.0), "blend": (0.5, 0.5, 0.0),
         "grey_blend": (0.5, 0.5, 1.0)}


class HistogramMatch(nn.Module):
    """Each channel's quantiles (of the image it is given) moved onto fixed target quantiles,
    piecewise linearly; the sum of clamped ramps is exportable (no searchsorted in ONNX)."""

    target: torch.Tensor

    def __init__(self, target_quantiles: torch.Tensor | None = None) -> None:
        super().__init__()
        default = torch.linspace(0, 1, QUANTILES).repeat(3, 1)
        target = default if target_quantiles is None else torch.as_tensor(target_quantiles).float()
        self.register_buffer("target", torch.cummax(target, dim=1).values.clone())

    def own_quantiles(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2).sort(dim=2).values                                   # (B, 3, N)
        # Positions in integers: a pixel count passes FP16's 65504 (a 384x288 working image
        # has 110592), so float positions put every index out of range in the FP16 graph.
        scaled = torch.arange(QUANTILES, device=x.device) * (flat.shape[2] - 1)  # int64, exact
        lo = scaled // (QUANTILES - 1)
        hi = (lo + 1).clamp(max=flat.shape[2] - 1)
        frac = (scaled % (QUANTILES - 1)).to(x.dtype) / (QUANTILES - 1)
        index = torch.stack([lo, hi]).view(2, 1, 1, -1).expand(2, *flat.shape[:2], QUANTILES)
        below, above = flat.gather(2, index[0]), flat.gather(2, index[1])
        return below + (above - below) * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        knots = self.own_quantiles(x)                                            # (B, 3, Q)
        knots = knots + torch.arange(QUANTILES, device=x.device) * 1e-6          # flat runs (clipping)
        width = (knots[..., 1:] - knots[..., :-1]).clamp(min=1e-6)
        steps = self.target[:, 1:] - self.target[:, :-1]                         # (3, Q-1)
        ramp = ((x.unsqueeze(-1) - knots[:, :, None, None, :-1]) / width[:, :, None, None]).clamp(0, 1)
        return self.target[:, :1, None].unsqueeze(0) + (ramp * steps[:, None, None]).sum(-1)


class CurvesNAFNet(nn.Module):
    def __init__(self, tone_curves: list | None = None, preset: dict | None = None, **arch: Any) -> None:
        super().__init__()
        preset = preset or {"kind": "curves", "curves": tone_curves, "target_quantiles": None}
        self.curves = ToneCurves(None if preset["curves"] is None else torch.tensor(preset["curves"]))
        self.histogram = HistogramMatch(preset["target_quantiles"])
        # the kind is fixed at construction (export bakes its branch in); the mix buffer saves it
        self.kind = preset["kind"]
        self.register_buffer("mix", torch.tensor(MIXES[self.kind]))
        self.body = NAFNet(**arch)
        # the residual starts at zero, so the untrained model is exactly the fitted preset
        nn.init.zeros_(self.body.ending.weight)
        if self.body.ending.bias is not None:
            nn.init.zeros_(self.body.ending.bias)

    def extra_repr(self) -> str:
        return f"kind={self.kind}"  # the kind's branch is baked into an exported graph

    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """The preset on the image the network sees (for global_view models, the whole photo)."""
        means = x.mean(dim=(2, 3), keepdim=True)
        gains = means.mean(dim=1, keepdim=True) / means.clamp(min=1e-3)
        if self.kind == "curves":
            return self.curves(x)
        if self.kind == "histogram":
            return self.histogram(x)
        if self.kind == "grey_blend":
            x = (x * gains).clamp(0, 1)
        return 0.5 * (self.curves(x) + self.histogram(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prior(x))


def kind_of(mix: torch.Tensor) -> str:
    """The preset kind a saved ``mix`` buffer stands for."""
    values = tuple(round(float(v), 3) for v in mix)
    return next(kind for kind, m in MIXES.items() if m == values)
