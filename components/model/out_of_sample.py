"""Training each pair over the preset fitted without it (``train.out_of_sample_prior``).

A ``tone_prior`` network learns the residual over the preset. Fitted on every training pair,
that preset flatters each pair (its own pair helped fit it): the curves score 0.35 dB (FiveK)
to 0.56 dB (LOL) better on their training photos than on a photo they left out, so the
network would learn to correct a smaller error than an unseen photo brings. Here each
training photo's input goes through the preset fitted on the *other* training pairs (applied
by the dataset, before the crop), the network trains over an identity prior, and the preset of
every pair goes into the model after training, as it is served. LOL 4-fold: +0.21 dB, lower
CIEDE2000, contrast and cast; FiveK: a tie (bench/README.md). ``global_view`` models only;
the input's exposure and white-balance jitter (``train.exposure_stops``, ``white_balance``), when
on, then applies to the preset's edit rather than before it.
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from components.data.lmdb_read import iter_pairs
from components.data.whole_photo_data import WholePhotoDataset
from components.model.curves_nafnet import MIXES, CurvesNAFNet
from components.model.presets import Kind, Preset, apply_preset, leave_one_out_priors

IDENTITY_PRIOR = {"kind": "curves", "curves": None, "target_quantiles": None}
DATASET_KEY = "out_of_sample_priors"  # the dataset's option: the priors' .npz


class HeldOutPriorDataset(WholePhotoDataset):
    """Whole photos whose inputs went through the preset fitted without their own pair."""

    @cached_property
    def priors(self) -> tuple[Kind, dict[str, tuple[np.ndarray, np.ndarray]]]:
        return read_priors(self.opt[DATASET_KEY])

    def input_of(self, key: str, lq: np.ndarray) -> np.ndarray:
        kind, priors = self.priors
        edited = apply_preset(kind, lq.astype(np.float32) / 255, *priors[key])
        return np.clip(np.rint(edited * 255), 0, 255).astype(np.uint8)


@contextmanager
def priors_file(lmdb_dir: Path, kind: Kind) -> Iterator[Path]:
    """Each training pair's leave-one-out preset of ``kind`` (keyed as the LMDB), in a
    temporary .npz that lives while the training does (each DDP rank writes its own)."""
    keyed = list(iter_pairs(lmdb_dir / "train_whole"))
    priors = leave_one_out_priors([(lq, gt) for _, lq, gt in keyed], kind)
    with tempfile.TemporaryDirectory(prefix="brighthouse-priors-") as folder:
        path = Path(folder) / "priors.npz"
        np.savez(path, kind=kind, keys=[k for k, _, _ in keyed], curves=np.stack([c for c, _ in priors]),
                 quantiles=np.stack([q for _, q in priors]))
        yield path


def read_priors(path: str) -> tuple[Kind, dict[str, tuple[np.ndarray, np.ndarray]]]:
    saved = np.load(path)
    priors = {str(k): (c, q) for k, c, q in zip(saved["keys"], saved["curves"], saved["quantiles"], strict=True)}
    return str(saved["kind"]), priors  # type: ignore[return-value]


def install_prior(net: CurvesNAFNet, preset: Preset) -> CurvesNAFNet:
    """The preset of every pair into a network trained over the identity."""
    with torch.no_grad():
        net.curves.lut.copy_(torch.tensor(preset.curves))
        net.histogram.target.copy_(torch.cummax(torch.tensor(preset.target_quantiles).float(), dim=1).values)
        net.get_buffer("mix").copy_(torch.tensor(MIXES[preset.kind]))
    net.kind = preset.kind
    return net


def validated_with_prior(validate: Callable[[int, torch.nn.Module], None] | None,
                         prior: Preset) -> Callable[[int, torch.nn.Module], None] | None:
    """Mid-training validation scores the network as it will be served: over the full preset."""
    if validate is None:
        return None
    return lambda it, net: validate(it, install_prior(copy.deepcopy(net), prior))  # type: ignore[arg-type]
