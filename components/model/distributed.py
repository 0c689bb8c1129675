"""torchrun/DDP plumbing: which rank this process is, and a check that all ranks agree.

``torchrun --nproc-per-node N -m components.train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; a
plain ``python -m components.train`` is a world of one and never touches torch.distributed.
NCCL on CUDA, gloo on CPU (what the two-process test runs).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


ONE_PROCESS = Ranks()  # a run without torchrun


def ranks_from_env() -> Ranks:
    env = os.environ
    return Ranks(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_launcher() -> None:
    """Under torchrun, end this rank when its launcher dies. torchrun starts each rank in a
    session of its own, so a worker killed with its process group (a preempted Airflow
    worker, ``make stack-down``) would otherwise leave the rank training on, beside the retry."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    launcher = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != launcher:  # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def init_distributed(device: str) -> Ranks:
    """Join the process group torchrun set up (no-op for a world of one)."""
    die_with_launcher()
    ranks = ranks_from_env()
    if ranks.distributed and not torch.distributed.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(ranks.local_rank)
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
    return ranks


def from_main(value: bool, ranks: Ranks) -> bool:
    """The main rank's ``value`` on every rank (a decision only the main rank can make)."""
    if not ranks.distributed:
        return value
    flag = [value]
    torch.distributed.broadcast_object_list(flag, src=0)
    return bool(flag[0])


def shutdown() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def weights_digest(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def check_ranks_agree(net: torch.nn.Module, ranks: Ranks) -> list[str]:
    """Every rank's weight digest; raises if DDP let them drift apart."""
    digest = weights_digest(net)
    if not ranks.distributed:
        return [digest]
    digests: list = [None] * ranks.world_size
    torch.distributed.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP ranks ended with different weights: {digests}")
    return digests


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return requested


def resolve_precision(requested: str, device: str, cpu_flags: str | None = None) -> str:
    """``auto``: BF16 autocast on CUDA, and on CPUs with BF16 instructions (AVX512-BF16, AMX),
    where it trains the ``cpu`` profile 1.6x faster (bench/train_step_speed.py); FP32 on other
    CPUs, which would emulate it. Weights, the optimiser and the losses stay FP32 either way."""
    if requested != "auto":
        return requested
    if device == "cuda":
        return "bf16"
    return "bf16" if native_cpu_bf16(cpu_flags) else "fp32"


def native_cpu_bf16(cpu_flags: str | None = None) -> bool:
    """Whether this CPU has BF16 arithmetic (x86 avx512_bf16 or amx_bf16, Arm bf16), from
    ``/proc/cpuinfo``'s flags. PyTorch's own check passes any AVX512 CPU, where BF16 is emulated."""
    if cpu_flags is None:
        try:
            cpu_flags = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no way to tell, so the safe choice
            return False
    words = set(cpu_flags.split())
    return bool(words & {"avx512_bf16", "amx_bf16", "bf16"})
