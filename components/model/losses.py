"""Training losses beyond BasicSR's own: the colour loss users ask for first.

Walls that turn cream or skies that go teal are the failure people notice before any PSNR
drop. ``ChromaLoss`` compares only the chroma (BT.601 Cb, Cr) of output and target, averaged
over blocks so it weighs colour casts, not per-pixel noise; L1 on RGB keeps doing the rest.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# BT.601 rows for Cb and Cr from RGB in [0, 1]
_CHROMA = torch.tensor([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """N x 2 x H x W chroma (Cb, Cr) of an N x 3 x H x W RGB batch."""
    return torch.einsum("ck,nkhw->nchw", _CHROMA.to(rgb), rgb)


class ChromaLoss(nn.Module):
    def __init__(self, block: int = 8) -> None:
        super().__init__()
        self.block = block

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = min(self.block, pred.shape[-1], pred.shape[-2])
        return F.l1_loss(F.avg_pool2d(chroma(pred), k), F.avg_pool2d(chroma(target), k))
