"""k networks served as one: the models cross-validation trained, each on all but one fold.

Their outputs are averaged where the network runs (a global_view model's working size, a
tiled model's tile), so a global_view ensemble costs k small network runs and still one
transfer to full resolution. It exports as one ONNX graph, and serving, evaluation and the
review page run it as any model. Averaging members that each missed a different third of
the pairs cuts the variance a few pairs leave in any one of them.
"""
from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for member in self.members[1:]:
            out = out + member(x)
        return out / len(self.members)
