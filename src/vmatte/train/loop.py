"""The training loop: one process per device under ``torchrun``, PyTorch's own
DistributedDataParallel (gloo on CPU, NCCL on CUDA); a plain single process without torchrun.

Steps are counted from 1: "step k" is the state after k optimiser updates, which is what a
checkpoint named step_k holds and what a resume from it continues with (step k + 1 next).
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data.datasets import KINDS, SEGMENTATION, StepSampler, TrainingClips
from .logging import MetricLogger
from .models import ClipModel, build_model
from .stages import compute_losses
from .validate import validate


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """From torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(int(os.environ.get("RANK", "0")), world, device)


def _param_groups(model: ClipModel, cfg: TrainConfig) -> list[dict]:
    encoder, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (encoder if name.startswith(model.encoder_prefix) else rest).append(p)
    groups = [{"params": rest, "lr": cfg.optim.lr, "base_lr": cfg.optim.lr}]
    if encoder:
        groups.append({"params": encoder, "lr": cfg.optim.lr_encoder, "base_lr": cfg.optim.lr_encoder})
    return groups


def _mean_over_ranks(values: dict[str, torch.Tensor], d: Dist) -> dict[str, float]:
    names = sorted(values)
    flat = torch.stack([values[n].detach().float() for n in names]).to(d.device)
    if d.world > 1:
        dist.all_reduce(flat)
        flat /= d.world
    return {n: float(v) for n, v in zip(names, flat.cpu())}


def _move(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train(cfg: TrainConfig, resume: str | None = None) -> dict[str, float]:
    """Run ``cfg``; returns the last step's (rank-averaged) loss terms."""
    d = setup_distributed()
    if cfg.run.num_threads > 0:
        torch.set_num_threads(cfg.run.num_threads)
    torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank (DDP checks too)
    model, source = build_model(cfg.model)
    start = 0
    state = load_checkpoint(resume) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        start = int(state["step"])
    model.to(d.device).train()
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.optim.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    # find_unused_parameters: RVM's matting and segmentation passes use different heads, its
    # refiner is off at training sizes, and MatAnyone's segmentation head is not supervised.
    net = DistributedDataParallel(model, find_unused_parameters=True) if d.world > 1 else model
    data = TrainingClips(cfg.data, cfg.augment, cfg.run.seed)
    sampler = StepSampler(data, d.rank, d.world, cfg.data.batch_size, start, cfg.run.steps)
    loader = DataLoader(
        data,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        persistent_workers=False,
        pin_memory=d.device.type == "cuda",
    )
    logger = MetricLogger(cfg.run.out_dir, start, cfg.run.tensorboard) if d.main else None
    if d.main and state is None:
        print(f"training {cfg.model.kind} from {source} on {d.world} process(es), {d.device}", flush=True)
    last: dict[str, float] = {}
    tick = time.perf_counter()
    for step, batch in enumerate(loader, start=start + 1):
        kind = KINDS[data.kind_of_step(step - 1)]
        batch = _move(batch, d.device)
        lr_scale = min(1.0, step / cfg.optim.warmup_steps) if cfg.optim.warmup_steps else 1.0
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * lr_scale
        segmentation = int(batch["kind"][0]) == SEGMENTATION
        out = net(batch["image"], batch["mask0"], segmentation=segmentation and cfg.model.kind == "rvm")
        parts = compute_losses(cfg.model.kind, out, batch, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        if cfg.optim.grad_clip > 0:
            parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        last = _mean_over_ranks(parts, d)
        if not math.isfinite(last["total"]):
            raise FloatingPointError(f"loss is {last['total']} at step {step}; lower optim.lr or check the data")
        if step % cfg.run.log_every == 0 or step == cfg.run.steps:
            now = time.perf_counter()
            steps_done = cfg.run.log_every if step % cfg.run.log_every == 0 else step % cfg.run.log_every
            last["samples_per_s"] = steps_done * cfg.data.batch_size * d.world / max(now - tick, 1e-9)
            last["lr"] = optimizer.param_groups[0]["lr"]
            if d.device.type == "cuda":
                last["gpu_mem_gib"] = torch.cuda.max_memory_allocated(d.device) / 2**30
            else:
                last["max_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            tick = now
            if logger is not None:
                logger.log(step, kind, {k: v for k, v in last.items() if k not in KINDS})
                logger.log(step, "train", {"total": last["total"]})
        if d.main and (step % cfg.run.checkpoint_every == 0 or step == cfg.run.steps):
            save_checkpoint(cfg.run.out_dir, step, model, optimizer, cfg.to_dict())
        if d.main and cfg.val.every and cfg.val.clips and (step % cfg.val.every == 0 or step == cfg.run.steps):
            scores = validate(model, cfg.val.clips, tuple(cfg.data.size), cfg.val.max_frames)
            logger.log(step, "val", scores)
        if d.world > 1 and (step % cfg.run.checkpoint_every == 0 or step == cfg.run.steps):
            dist.barrier()  # nobody races ahead of a checkpoint (or a validation) being written
    if d.world > 1:
        # DDP keeps replicas equal by construction; this checks it (logged, and tested in CI).
        gap = _replica_gap(model)
        if logger is not None:
            logger.log(cfg.run.steps, "train", {"replica_max_abs_diff": gap})
    if logger is not None:
        logger.close()
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last if d.main else {}


def _replica_gap(model: torch.nn.Module) -> float:
    """Largest |parameter - rank 0's parameter| over all ranks and parameters."""
    vec = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    ref = vec.clone()
    dist.broadcast(ref, 0)
    gap = (vec - ref).abs().max()
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)
