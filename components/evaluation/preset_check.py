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


def fold_scores(checkpoint: Path, fold_lmdb: Path, spec: InferenceSpec, scales: list[float]) -> np.ndarray:
    """PSNR (pairs x scales) of the model at ``checkpoint`` on its held-out pairs, with its residual
    over the preset scaled by each of ``scales`` (1: as trained, 0: its preset alone). Two passes a
    pair, not one per scale: the transfer to full resolution is a least-squares fit, linear in the
    edit it carries, so a scaled residual's output is the same blend of the two (up to clipping)."""
    with tempfile.TemporaryDirectory() as tmp:
        preset_only = Path(tmp) / "preset.pth"
        preset_only.write_bytes(checkpoint.read_bytes())
        switch_off_residual(preset_only)
        network, preset = torch_runner(load_model(checkpoint)), torch_runner(load_model(preset_only))
    rows = []
    for _, lq, gt in iter_pairs(fold_lmdb / "val"):
        with_network, alone = enhance(lq, network, spec), enhance(lq, preset, spec)
        rows.append([psnr(np.clip(alone + s * (with_network - alone), 0.0, 1.0), gt) for s in scales])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(scales))


def network_vs_preset(fold_models: list[Path], fold_lmdbs: list[Path], spec: InferenceSpec,
                      scales: tuple[float, ...] = (0.0, 1.0)) -> NetworkVsPreset:
    """Fold model i (``fold_models[i]``, a checkpoint) on fold i's held-out pairs, against its
    preset, and at each of ``scales`` of its residual (the preset and the network always)."""
    tried = sorted({0.0, 1.0, *scales})
    scores = np.concatenate([fold_scores(checkpoint, lmdb, spec, tried)
                             for checkpoint, lmdb in zip(fold_models, fold_lmdbs, strict=True)])
    if not len(scores):
        raise ValueError(f"the folds {[str(d) for d in fold_lmdbs]} hold no pairs to score")
    mean = {scale: round(float(v), 4) for scale, v in zip(tried, scores.mean(axis=0), strict=True)}
    return NetworkVsPreset(pairs=len(scores), network_psnr=mean[1.0], preset_psnr=mean[0.0], scaled_psnr=mean)
