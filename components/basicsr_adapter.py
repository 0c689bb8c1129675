"""The only module that speaks BasicSR: it builds the option dict and drives the model.

Training goes through BasicSR's own registries (``PairedImageDataset`` on LMDB, ``SRModel``
with its losses, optimisers and schedulers); the loop is ours so that progress and metrics
go to MLflow and library code never parses ``sys.argv`` or calls ``sys.exit``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from components.config import TrainConfig
from components.nafnet_arch import register_nafnet

log = logging.getLogger(__name__)
VGG19_FILE = "vgg19-dcbb9e9d.pth"


def build_options(cfg: TrainConfig, lmdb_dir: Path, out_dir: Path, device: str) -> dict:
    """BasicSR's option dict, resolved from the typed train config."""
    train_ds = {
        "name": "train", "type": "PairedImageDataset", "phase": "train", "scale": 1,
        "dataroot_lq": str(lmdb_dir / "train" / "lq.lmdb"),
        "dataroot_gt": str(lmdb_dir / "train" / "gt.lmdb"),
        "io_backend": {"type": "lmdb"}, "filename_tmpl": "{}",
        "gt_size": cfg.patch_size, "use_hflip": True, "use_rot": True,
        "batch_size_per_gpu": cfg.batch_size, "num_worker_per_gpu": cfg.num_workers,
        "dataset_enlarge_ratio": 1, "prefetch_mode": None,
    }
    return {
        "name": "brighthouse", "model_type": "SRModel", "scale": 1, "is_train": True,
        "num_gpu": 1 if device == "cuda" else 0, "dist": False, "rank": 0, "world_size": 1,
        "manual_seed": cfg.seed,
        "datasets": {"train": train_ds},
        "network_g": {"type": "NAFNet", **cfg.arch.model_dump()},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None,
                 "experiments_root": str(out_dir), "models": str(out_dir),
                 "training_states": str(out_dir / "training_states"), "log": str(out_dir)},
        "train": {
            "ema_decay": 0, "total_iter": cfg.iterations, "warmup_iter": -1,
            "optim_g": {"type": "AdamW", "lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": [0.9, 0.9]},
            "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [cfg.iterations],
                          "restart_weights": [1], "eta_min": cfg.eta_min},
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
            "ema_decay": cfg.ema_decay, **_perceptual(cfg),
        },
        "logger": {"print_freq": cfg.log_every, "use_tb_logger": False},
        # ours, not BasicSR's: applied by this module's training step
        "brighthouse": {"grad_clip": cfg.grad_clip, "colour_weight": cfg.colour_weight,
                        "precision": resolve_precision(cfg.precision, device),
                        "channels_last": cfg.channels_last and device == "cuda"},
    }


def _perceptual(cfg: TrainConfig) -> dict:
    if cfg.perceptual_weight <= 0:
        return {}
    return {"perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1.0}, "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "criterion": "l1",
                               "perceptual_weight": cfg.perceptual_weight, "style_weight": 0.0}}


def check_vgg_weights() -> None:
    """BasicSR's perceptual loss gets VGG19 from torchvision, which downloads it when it is not
    cached; offline that fails deep inside training. Say which file is missing, up front."""
    cache = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if not cache.is_file():
        raise FileNotFoundError(f"train.perceptual_weight > 0 needs the VGG19 weights {VGG19_FILE} in "
                                f"{cache.parent} (torchvision's cache; set TORCH_HOME to move it), or set "
                                "train.perceptual_weight: 0")


def resolve_precision(requested: str, device: str) -> str:
    return ("bf16" if device == "cuda" else "fp32") if requested == "auto" else requested


def save_options(opt: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(opt, sort_keys=False), encoding="utf-8")


def _infinite(loader, sampler):
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def train(opt: dict, on_log: Callable[[int, dict], None]) -> torch.nn.Module:
    """Train per ``opt``; calls ``on_log(iteration, values)`` every print_freq iterations.

    Returns the trained generator network (unwrapped, on CPU, in eval mode).
    """
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models import build_model
    from basicsr.utils import set_random_seed

    register_nafnet()
    if opt["train"].get("perceptual_opt"):
        check_vgg_weights()
    set_random_seed(opt["manual_seed"])
    ds_opt = opt["datasets"]["train"]
    dataset = build_dataset(ds_opt)
    sampler = EnlargedSampler(dataset, opt["world_size"], opt["rank"], 1)
    loader = build_dataloader(dataset, ds_opt, num_gpu=opt["num_gpu"], dist=opt["dist"],
                              sampler=sampler, seed=opt["manual_seed"])
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} training images are fewer than one batch of "
                         f"{ds_opt['batch_size_per_gpu']}")
    model = build_model(opt)
    step = TrainingStep(model, opt["brighthouse"])
    total = opt["train"]["total_iter"]
    log.info("training %d iterations, %d images, %d batches per epoch", total, len(dataset), len(loader))
    batches = _infinite(loader, sampler)
    for it in range(1, total + 1):
        model.update_learning_rate(it, warmup_iter=opt["train"]["warmup_iter"])
        model.feed_data(next(batches))
        step(it)
        if it % opt["logger"]["print_freq"] == 0 or it == total:
            values = {k: float(v) for k, v in model.get_current_log().items()}
            values["lr"] = model.get_current_learning_rate()[0]
            on_log(it, values)
    net = getattr(model, "net_g_ema", model.net_g)
    net = net.module if hasattr(net, "module") else net
    return net.cpu().eval()


class TrainingStep:
    """One optimisation step on BasicSR's model: its network, losses, optimiser and EMA, with
    what SRModel lacks: BF16 autocast, channels-last, the colour loss and gradient clipping."""

    def __init__(self, model, knobs: dict) -> None:
        from components.losses import ChromaLoss

        self.model, self.knobs = model, knobs
        self.colour = ChromaLoss() if knobs["colour_weight"] > 0 else None
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
        sum(losses.values()).backward()
        if knobs["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(m.net_g.parameters(), knobs["grad_clip"])
        m.optimizer_g.step()
        if m.ema_decay > 0:
            m.model_ema(decay=m.ema_decay)
        m.log_dict = {k: float(v.detach()) for k, v in losses.items()}


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return requested

