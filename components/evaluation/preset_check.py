"""Does a network trained on these few pairs beat the preset it starts from?

A ``tone_prior`` model is NAFNet over the strongest cheap preset fitted on its training pairs
(``model/curves_nafnet.py``). On a small set the network can learn the client's edit beyond the
preset, or only noise around it. Cross-validation says which: each fold model runs, as served
(its inference spec, full resolution), on the fold it did not train on, beside the same model
with its residual switched off, which is its preset through the same transfer. Train reads the
verdict to choose what ships (``components/small_set.py``). PSNR only, so it costs a few
seconds a pair; the gate then scores what ships on every check.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from components.config import InferenceSpec
from components.data.lmdb_read import iter_pairs
from components.evaluation.metrics import psnr
from components.inference.modes import enhance
from components.model.model_io import load_model, switch_off_residual, torch_runner
from components.records import NetworkVsPreset


def fold_scores(checkpoint: Path, fold_lmdb: Path, spec: InferenceSpec) -> tuple[list[float], list[float]]:
    """PSNR per held-out pair of the model at ``checkpoint``, and of its preset alone."""
    with tempfile.TemporaryDirectory() as tmp:
        preset_only = Path(tmp) / "preset.pth"
        preset_only.write_bytes(checkpoint.read_bytes())
        switch_off_residual(preset_only)
        network, preset = torch_runner(load_model(checkpoint)), torch_runner(load_model(preset_only))
    network_psnr, preset_psnr = [], []
    for _, lq, gt in iter_pairs(fold_lmdb / "val"):
        network_psnr.append(psnr(enhance(lq, network, spec), gt))
        preset_psnr.append(psnr(enhance(lq, preset, spec), gt))
    return network_psnr, preset_psnr


def network_vs_preset(fold_models: list[Path], fold_lmdbs: list[Path], spec: InferenceSpec) -> NetworkVsPreset:
    """Fold model i (``fold_models[i]``, a checkpoint) on fold i's held-out pairs, against its preset."""
    network: list[float] = []
    preset: list[float] = []
    for checkpoint, lmdb in zip(fold_models, fold_lmdbs, strict=True):
        with_network, alone = fold_scores(checkpoint, lmdb, spec)
        network += with_network
        preset += alone
    if not network:
        raise ValueError(f"the folds {[str(d) for d in fold_lmdbs]} hold no pairs to score")
    return NetworkVsPreset(pairs=len(network), network_psnr=round(float(np.mean(network)), 4),
                           preset_psnr=round(float(np.mean(preset)), 4))
