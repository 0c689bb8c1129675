"""Training losses beyond BasicSR's own: the colour loss users ask for first, and a loss on the look.

Walls that turn cream or skies that go teal are the failure people notice before any PSNR
drop. ``ChromaLoss`` compares only the chroma (BT.601 Cb, Cr) of output and target, averaged
over blocks so it weighs colour casts, not per-pixel noise; L1 on RGB keeps doing the rest.

A pixel loss on a few pairs is minimised by the mean of the plausible edits: flat contrast,
grey blacks. ``LookLoss`` compares the *distributions* of luminance and chroma of output and
target (L1 between their sorted values: the 1-D Wasserstein distance between the histograms),
so a washed-out output costs even where no single pixel is far off.
"""
from __future__ import annotations

from pathlib import Path

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


_LUMA = torch.tensor([0.299, 0.587, 0.114])


class LookLoss(nn.Module):
    """L1 between the sorted luminance values of output and target, and between their sorted
    chroma magnitudes (saturation): contrast, black and white levels, and colourfulness."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        def look(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            luma = torch.einsum("k,nkhw->nhw", _LUMA.to(rgb), rgb).flatten(1)
            return luma.sort(dim=1).values, chroma(rgb).norm(dim=1).flatten(1).sort(dim=1).values

        (pl, pc), (tl, tc) = look(pred), look(target)
        return F.l1_loss(pl, tl) + F.l1_loss(pc, tc)


VGG19_FILE = "vgg19-dcbb9e9d.pth"  # what torchvision caches for BasicSR's perceptual loss


def check_vgg_weights() -> None:
    """BasicSR's perceptual loss gets VGG19 from torchvision, which downloads it when it is not
    cached; offline that fails deep inside training. Say which file is missing, up front."""
    cache = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if not cache.is_file():
        raise FileNotFoundError(f"train.perceptual_weight > 0 needs the VGG19 weights {VGG19_FILE} in "
                                f"{cache.parent} (torchvision's cache; set TORCH_HOME to move it), or set "
                                "train.perceptual_weight: 0")
