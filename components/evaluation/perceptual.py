"""LPIPS, when its backbone weights are on this machine; "unavailable", never a fake zero.

``lpips`` ships its small linear heads but not the AlexNet backbone, which torchvision loads
from ``$TORCH_HOME/hub/checkpoints/`` (default ``~/.cache/torch``). Without internet (CI, an
air-gapped GPU box) the download would fail, so we look for the file first and say which one
is missing and where it goes.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def backbone_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


LpipsFn = Callable[[np.ndarray, np.ndarray], float]  # (output, target) HWC in [0, 1] -> LPIPS distance


def lpips_scorer() -> tuple[LpipsFn | None, str]:
    """(score(pred, target) -> LPIPS distance, "") or (None, why it is unavailable)."""
    path = backbone_path()
    if not path.is_file():
        return None, f"unavailable: AlexNet weights {ALEXNET_FILE} not found in {path.parent}"
    import warnings

    import lpips
    import torch

    with warnings.catch_warnings():  # lpips still passes torchvision's deprecated pretrained=True
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pretrained=True, verbose=False).eval()

    @torch.inference_mode()
    def score(pred: np.ndarray, target: np.ndarray) -> float:
        def tensor(x: np.ndarray) -> torch.Tensor:  # HWC [0,1] -> NCHW [-1,1], as LPIPS expects
            return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float() * 2 - 1
        return float(net(tensor(pred), tensor(target)).item())

    return score, ""
