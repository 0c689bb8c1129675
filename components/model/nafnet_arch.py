"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022).

Written for this project from the paper: a U-Net of NAFBlocks whose only non-linearity is
SimpleGate (split channels, multiply), with simplified channel attention, channel-wise
LayerNorm, and zero-initialised residual scales (beta, gamma) so every block starts as
identity and the whole network starts as ``output = input``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor, per pixel."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # PyTorch's fused layer_norm over the last axis, on an NHWC view: 1.4x faster training on
        # CPU than the same maths in elementwise ops, whose intermediates autograd keeps; free
        # of copies when x is channels-last (bench/README.md, training speed)
        nhwc = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return nhwc.permute(0, 3, 1, 2)


def _window_bounds(idx: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start/end (exclusive) of a ``window``-long span around each index, shifted inward at
    the borders and cut to the whole axis when it is shorter. Tensor ops only, so the ONNX
    export keeps height and width dynamic."""
    n = idx[-1:] + 1
    start = (idx - window // 2).clamp(min=0)
    start = torch.minimum(start, (n - window).clamp(min=0))
    return start, torch.minimum(start + window, n)


class LocalAvgPool(nn.Module):
    """TLC's local statistics (NAFNet paper, sec. 4.4; Chu et al. 2022): the mean over a
    ``window`` x ``window`` neighbourhood instead of the whole image, so a model trained on
    patches sees patch-sized statistics on a full photo. Separable running sums keep it
    O(HW) and numerically tame on 3300x2200 inputs."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mean_along(self._mean_along(x, 3), 2)

    def _mean_along(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        idx = torch.arange(x.shape[dim], device=x.device)
        start, end = _window_bounds(idx, self.window)
        sums = F.pad(x.cumsum(dim), (1, 0) if dim == 3 else (0, 0, 1, 0))
        span = (end - start).to(x.dtype)
        diff = sums.index_select(dim, end) - sums.index_select(dim, start)
        return diff / (span if dim == 3 else span[:, None])

    def extra_repr(self) -> str:
        return f"window={self.window}"


class SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, drop: float = 0.0):
        super().__init__()
        dw = c * dw_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.sg = SimpleGate()
        # Simplified channel attention: global pooling + 1x1 conv, no ReLU/sigmoid.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.drop1 = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.drop2 = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.drop1(self.conv3(x * self.sca(x)))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + self.drop2(x) * self.gamma


def _blocks(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(c) for _ in range(n)])


class NAFNet(nn.Module):
    def __init__(
        self,
        img_channel: int = 3,
        width: int = 32,
        middle_blk_num: int = 12,
        enc_blk_nums: Sequence[int] = (2, 2, 4, 8),
        dec_blk_nums: Sequence[int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.ups = nn.ModuleList(), nn.ModuleList()
        chan = width
        for n in enc_blk_nums:
            self.encoders.append(_blocks(chan, n))
            self.downs.append(nn.Conv2d(chan, chan * 2, 2, stride=2))
            chan *= 2
        self.middle_blks = _blocks(chan, middle_blk_num)
        for n in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(_blocks(chan, n))
        self.padder_size = 2 ** len(enc_blk_nums)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        _, _, h, w = inp.shape
        x = self._pad_to_multiple(inp)
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            feat = decoder(up(feat) + skip)
        out = self.ending(feat) + x
        return out[:, :, :h, :w]

    def _pad_to_multiple(self, x: torch.Tensor) -> torch.Tensor:
        # Each level halves H and W, so both must divide by 2**levels.
        _, _, h, w = x.shape
        pad_h, pad_w = -h % self.padder_size, -w % self.padder_size
        return F.pad(x, (0, pad_w, 0, pad_h))


def use_local_pooling(model: NAFNet, window: int) -> NAFNet:
    """Switch every block's channel attention to TLC local pooling, ``window`` px at full
    resolution (halved per level). In place; returns ``model``."""
    levels = [(enc, i) for i, enc in enumerate(model.encoders)]
    levels.append((model.middle_blks, len(model.encoders)))
    levels += [(dec, len(model.decoders) - 1 - i) for i, dec in enumerate(model.decoders)]
    for blocks, level in levels:
        for block in blocks.children():
            if isinstance(block, NAFBlock):
                block.sca[0] = LocalAvgPool(max(1, window >> level))
    return model
