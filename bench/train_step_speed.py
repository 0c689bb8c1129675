"""Seconds per training step of a profile's network, with LayerNorm2d as PyTorch's fused
layer_norm (the project's) or as elementwise maths (before), in NCHW or channels-last layout,
and with BF16 autocast (``train.precision``; fused, channels-last) or FP32.

    .venv/bin/python bench/train_step_speed.py --profile cpu

One process, variants interleaved over ``--rounds``, so the ratios are fair on a shared CPU;
the absolute seconds are only this machine's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def elementwise_layer_norm(self, x: torch.Tensor) -> torch.Tensor:
    """The LayerNorm2d maths before: every intermediate is kept for the backward pass."""
    mean = x.mean(1, keepdim=True)
    var = (x - mean).pow(2).mean(1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + self.eps)
    return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def step_seconds(arch: dict, batch: int, patch: int, channels_last: bool, steps: int, bf16: bool = False) -> float:
    from components.model.nafnet_arch import NAFNet

    torch.manual_seed(0)
    model = NAFNet(**arch)
    for name, p in model.named_parameters():
        if name.endswith(("beta", "gamma")):  # trained blocks are not identities
            p.data.fill_(0.1)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # as components/model/basicsr_adapter.py
            out = model(x)
        (out.float() - y).abs().mean().backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    from components.model import nafnet_arch

    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    profile = yaml.safe_load((REPO / "params.yaml").read_text())["train"]["profiles"][args.profile]
    fused = nafnet_arch.LayerNorm2d.forward
    variants: dict[tuple[str, bool, str], list[float]] = {
        (ln, cl, "fp32"): [] for ln in ("elementwise", "fused") for cl in (False, True)}
    variants[("fused", True, "bf16")] = []
    for _ in range(args.rounds):
        for (ln, cl, precision), times in variants.items():
            nafnet_arch.LayerNorm2d.forward = fused if ln == "fused" else elementwise_layer_norm
            times.append(step_seconds(profile["arch"], profile["batch_size"], profile["patch_size"], cl, args.steps,
                                      bf16=precision == "bf16"))
    nafnet_arch.LayerNorm2d.forward = fused
    base = min(variants[("elementwise", False, "fp32")])
    print(f"profile {args.profile}: batch {profile['batch_size']} x {profile['patch_size']} px, "
          f"{torch.get_num_threads()} threads; best of {args.rounds} rounds of {args.steps} steps")
    for (ln, cl, precision), times in variants.items():
        print(f"  LayerNorm2d {ln:11s} {'channels-last' if cl else 'NCHW':13s} {precision} {min(times):.3f} s/step  "
              f"{base / min(times):.2f}x")


if __name__ == "__main__":
    main()
