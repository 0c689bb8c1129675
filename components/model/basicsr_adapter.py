"""The only module that runs BasicSR: it drives the model that ``basicsr_options`` describes.

Training goes through BasicSR's registries (``SRModel`` with its losses, optimisers and
schedulers; our two datasets over its LMDB layout, registered with it: patches cut from whole
photos for ``tiled`` models, whole photos for ``global_view`` ones); the loop is ours so that
progress and metrics go to MLflow and library code never parses ``sys.argv`` or calls ``sys.exit``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from components.data.photo_crops import PhotoCropDataset
from components.data.whole_photo_data import WholePhotoDataset
from components.model.curves_nafnet import CurvesNAFNet
from components.model.distributed import ONE_PROCESS, Ranks, check_ranks_agree
from components.model.losses import check_vgg_weights
from components.model.nafnet_arch import NAFNet
from components.model.out_of_sample import HeldOutPriorDataset
from components.model.train_state import rng_state, set_rng_state

if TYPE_CHECKING:
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models.sr_model import SRModel
    from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)


@dataclass
class TrainHooks:
    """How the stage watches and steers a run; the callables run on rank 0 only."""
    on_log: Callable[[int, dict], None] = lambda it, values: None
    on_validate: Callable[[int, torch.nn.Module], None] | None = None
    val_every: int = 0
    save_state: Callable[[int, dict], None] | None = None
    checkpoint_every: int = 0
    resume: dict | None = None  # a state written by save_state, for the same options and data


def train(opt: dict, hooks: TrainHooks, ranks: Ranks = ONE_PROCESS) -> tuple[torch.nn.Module, list[str]]:
    """Train per ``opt`` (resuming from ``hooks.resume``); returns the network to export (the
    EMA copy when there is one; on CPU, eval mode) and every rank's weight digest."""
    from basicsr.models import build_model
    from basicsr.utils import set_random_seed

    register_with_basicsr()
    if opt["train"].get("perceptual_opt"):
        check_vgg_weights()
    set_random_seed(opt["manual_seed"])  # the same initial weights on every rank
    model = build_model({**opt, "dist": False})  # DDP is wrapped below: BasicSR's assumes CUDA
    step = TrainingStep(model, opt["brighthouse"])
    loader, sampler = _loader(opt, ranks)
    start = _restore(model, hooks.resume, ranks) if hooks.resume else 0
    if start == 0:
        set_random_seed(opt["manual_seed"] + ranks.rank)  # each rank its own augmentations
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel

        model.net_g = DistributedDataParallel(model.net_g, device_ids=[ranks.local_rank] if opt["num_gpu"] else None)
    log.info("training iterations %d-%d on %d image(s), %d batches per epoch, %d rank(s)", start + 1,
             opt["train"]["total_iter"], len(loader.dataset), len(loader), ranks.world_size)  # type: ignore[arg-type]
    _loop(model, step, _batches(loader, sampler, start), opt, hooks, start, ranks)
    net = model.get_bare_model(getattr(model, "net_g_ema", model.net_g))
    return net.cpu().eval(), check_ranks_agree(net, ranks)


def register_with_basicsr() -> None:
    """Our networks and datasets in BasicSR's registries (idempotent; explicit, not import-time)."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY

    for registry, classes in ((ARCH_REGISTRY, (NAFNet, CurvesNAFNet)),
                              (DATASET_REGISTRY, (PhotoCropDataset, WholePhotoDataset, HeldOutPriorDataset))):
        for cls in classes:
            if cls.__name__ not in registry:
                registry.register(cls)


def _loader(opt: dict, ranks: Ranks) -> tuple[DataLoader, EnlargedSampler]:
    from basicsr.data import build_dataloader, build_dataset

    ds_opt = opt["datasets"]["train"]
    dataset = build_dataset(ds_opt)
    sampler = _resumable_sampler(dataset, ranks.world_size, ranks.rank)
    loader = build_dataloader(dataset, ds_opt, num_gpu=opt["num_gpu"], dist=ranks.distributed,
                              sampler=sampler, seed=opt["manual_seed"])
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} training images are fewer than one batch of "
                         f"{ds_opt['batch_size_per_gpu']} per rank")
    return loader, sampler


def _batches(loader: DataLoader, sampler: EnlargedSampler, start: int) -> Iterator[dict]:
    """Batches from iteration ``start`` on: epoch order is fixed by the epoch number, so a
    resumed run skips the batches already seen without loading them."""
    epoch, skip = divmod(start, len(loader))
    while True:
        sampler.set_epoch(epoch)
        sampler.skip = skip * (loader.batch_size or 1)
        yield from map(_patch_batch, loader)
        epoch, skip = epoch + 1, 0


def _patch_batch(batch: dict) -> dict:
    """A batch of PhotoCropDataset items (photos x patches x C x H x W) as one batch of patches."""
    return {k: v.flatten(0, 1) if isinstance(v, torch.Tensor) and v.ndim == 5 else v for k, v in batch.items()}


def _loop(model: SRModel, step: Callable[[int], None], batches: Iterator[dict], opt: dict, hooks: TrainHooks,
          start: int, ranks: Ranks) -> None:
    total, freq = opt["train"]["total_iter"], opt["logger"]["print_freq"]
    t0 = time.perf_counter()
    for it in range(start + 1, total + 1):
        model.update_learning_rate(it, warmup_iter=opt["train"]["warmup_iter"])
        model.feed_data(next(batches))
        step(it)
        if not ranks.is_main:
            continue
        if it % freq == 0 or it == total:
            values = {k: float(v) for k, v in model.get_current_log().items()}
            values["lr"] = model.get_current_learning_rate()[0]
            values["it_per_s"] = (it - start) / (time.perf_counter() - t0)
            hooks.on_log(it, values)
        if hooks.on_validate and hooks.val_every and (it % hooks.val_every == 0 or it == total):
            hooks.on_validate(it, model.get_bare_model(getattr(model, "net_g_ema", model.net_g)))
        if hooks.save_state and hooks.checkpoint_every and it % hooks.checkpoint_every == 0 and it < total:
            hooks.save_state(it, _snapshot(model, it))


def _snapshot(model: SRModel, it: int) -> dict:
    """Everything BasicSR's model needs to continue after iteration ``it``."""
    ema = getattr(model, "net_g_ema", None)
    return {"iter": it, "net_g": model.get_bare_model(model.net_g).state_dict(),
            "net_g_ema": ema.state_dict() if ema is not None else None,
            "optimizers": [o.state_dict() for o in model.optimizers],
            "schedulers": [s.state_dict() for s in model.schedulers], "rng": rng_state()}


def _restore(model: SRModel, state: dict, ranks: Ranks) -> int:
    model.get_bare_model(model.net_g).load_state_dict(state["net_g"])
    if state["net_g_ema"] is not None:
        model.net_g_ema.load_state_dict(state["net_g_ema"])
    for optimizer, saved in zip(model.optimizers, state["optimizers"], strict=True):
        optimizer.load_state_dict(saved)
    for scheduler, saved in zip(model.schedulers, state["schedulers"], strict=True):
        scheduler.load_state_dict(saved)
    if ranks.distributed:  # only rank 0's RNG was saved: the others continue from fresh seeds
        from basicsr.utils import set_random_seed

        set_random_seed(int(state["iter"]) * 1000 + ranks.rank)
    else:
        set_rng_state(state["rng"])
    log.info("resumed after iteration %d", state["iter"])
    return int(state["iter"])


def _resumable_sampler(dataset: Dataset, num_replicas: int, rank: int) -> EnlargedSampler:
    """BasicSR's EnlargedSampler (the same order, sharded by rank) that can skip ahead."""
    from basicsr.data.data_sampler import EnlargedSampler

    class ResumableSampler(EnlargedSampler):
        skip = 0  # samples to leave out of the next epoch

        def __iter__(self) -> Iterator[int]:
            return iter(list(super().__iter__())[self.skip:])

    return ResumableSampler(dataset, num_replicas, rank, 1)


class TrainingStep:
    """One optimisation step on BasicSR's model: its network, losses, optimiser and EMA, with
    what SRModel lacks: BF16 autocast, channels-last, the colour loss and gradient clipping."""

    def __init__(self, model: SRModel, knobs: dict) -> None:
        from components.model.losses import ChromaLoss, LookLoss

        self.model, self.knobs = model, knobs
        self.colour = ChromaLoss() if knobs["colour_weight"] > 0 else None
        self.look = LookLoss() if knobs.get("look_weight", 0) > 0 else None
        if knobs["channels_last"]:
            model.net_g.to(memory_format=torch.channels_last)

    def __call__(self, it: int) -> None:
        m, knobs = self.model, self.knobs
        m.optimizer_g.zero_grad(set_to_none=True)
        lq, gt = m.lq, m.gt
        if knobs["channels_last"]:
            lq = lq.contiguous(memory_format=torch.channels_last)
        with torch.autocast(lq.device.type, dtype=torch.bfloat16, enabled=knobs["precision"] == "bf16"):
            out = m.net_g(lq)
        out = out.float()  # losses in FP32: small differences matter at 40 dB
        losses = {"l_pix": m.cri_pix(out, gt)}
        if m.cri_perceptual is not None:
            losses["l_percep"] = m.cri_perceptual(out, gt)[0]
        if self.colour is not None:
            losses["l_colour"] = knobs["colour_weight"] * self.colour(out, gt)
        if self.look is not None:
            losses["l_look"] = knobs["look_weight"] * self.look(out, gt)
        sum(losses.values()).backward()
        if knobs["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(m.net_g.parameters(), knobs["grad_clip"])
        m.optimizer_g.step()
        if m.ema_decay > 0:
            m.model_ema(decay=m.ema_decay)
        m.log_dict = {k: float(v.detach()) for k, v in losses.items()}
