"""The training loop every restoration method shares: AdamW on the LoRA parameters, warm-up + cosine
schedule, gradient clipping, a per-step log, and resumable checkpoints.

Resuming is exact: batches and dropout masks are drawn from (seed, stage, step) rather than from a
running generator, and a checkpoint holds the LoRA weights, the optimizer state, the log so far and
the tokens / seconds spent, so a rerun continues the loss curve an uninterrupted run would have drawn.
"""
import json
import math
import os
import resource
import time
from pathlib import Path

import torch
from tqdm import tqdm

STATE = "state.pt"
DROPOUT_STREAM = 1000  # objectives draw their data from streams 0, 1, 2, ...


def lr_factor(step, total, warmup, min_ratio):
    """Linear warm-up to 1, then cosine decay from 1 to min_ratio at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - 1 - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def total_steps(hp, tokens_per_step):
    if hp["token_budget"]:
        return max(1, math.ceil(hp["token_budget"] / tokens_per_step))
    return hp["steps"]


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _trainable(model):
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def load_state(path, fingerprint):
    """The checkpoint at `path` when it was written for the same job (same fingerprint), else None."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state if state["fingerprint"] == fingerprint else None


def save_state(path, state):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a job killed mid-write leaves the previous checkpoint intact


class Progress:
    """What earlier stages of a sequence hand to the next: the log rows and the running totals."""

    def __init__(self):
        self.rows, self.tokens, self.seconds, self.steps = [], 0, 0.0, 0
        self.resumed_from = None


def train_stage(name, objective, hp, ctx, ckpt_dir, fingerprint, progress, on_step=None):
    """Run (or resume, or skip when already done) one stage; appends to `progress`."""
    student, device = ctx.student, ctx.device
    params = _trainable(student)
    optimizer = torch.optim.AdamW(params.values(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    steps = total_steps(hp, objective.tokens_per_step)
    path = Path(ckpt_dir) / f"{ctx.stage}-{name}" / STATE
    fingerprint = json.dumps({"job": fingerprint, "stage": ctx.stage, "name": name, "steps": steps}, sort_keys=True)
    base_rows, base_tokens, base_seconds = len(progress.rows), progress.tokens, progress.seconds
    start = 0
    state = load_state(path, fingerprint)
    if state is not None:
        with torch.no_grad():
            for key, value in state["params"].items():
                params[key].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        progress.rows[base_rows:] = state["rows"]
        progress.tokens = base_tokens + state["tokens"]
        progress.seconds = base_seconds + state["seconds"]
        if start < steps and progress.resumed_from is None:
            progress.resumed_from = progress.steps + start

    def checkpoint(step):
        save_state(path, {
            "fingerprint": fingerprint,
            "step": step,
            "params": {k: v.detach().cpu() for k, v in params.items()},
            "optimizer": optimizer.state_dict(),
            "rows": progress.rows[base_rows:],
            "tokens": progress.tokens - base_tokens,
            "seconds": progress.seconds - base_seconds,
        })

    student.train()
    bar = tqdm(total=steps, initial=start, desc=f"restore {name}", unit="step", dynamic_ncols=True,
               disable=not ctx.ranks.main)
    for step in range(start, steps):
        began = time.perf_counter()
        # Dropout masks from (seed, stage, step): the same on a resumed run as on an uninterrupted one.
        torch.manual_seed(int(ctx.rng(step, DROPOUT_STREAM).integers(2**62)))
        lr = hp["lr"] * lr_factor(step, steps, hp["warmup_steps"], hp["min_lr_ratio"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, parts = objective.loss(step)
        loss.backward()
        ctx.ranks.average_gradients(params.values())
        grad_norm = torch.nn.utils.clip_grad_norm_(params.values(), hp["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # time the step's kernels, not only their launch
        seconds = time.perf_counter() - began
        progress.tokens += objective.tokens_per_step
        progress.seconds += seconds
        # the global batch's loss: the mean over ranks of their slices' losses
        row = {"stage": name, "step": progress.steps + step + 1, "loss": ctx.ranks.mean(loss).item()}
        row.update({f"loss_{key}": ctx.ranks.mean(value).item() for key, value in parts.items()})
        row.update({
            "grad_norm": grad_norm.item(),
            "lr": lr,
            "tokens": progress.tokens,
            "tokens_per_s": objective.tokens_per_step / seconds,
            "peak_memory_mb": peak_memory_mb(device),
            "elapsed_s": progress.seconds,
        })
        progress.rows.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4g}", tok_s=f"{row['tokens_per_s']:.0f}")
        if ctx.ranks.main and ((step + 1) % hp["checkpoint_every"] == 0 or step + 1 == steps):
            checkpoint(step + 1)
        if on_step is not None:
            on_step(progress.steps + step + 1)
    bar.close()
    progress.steps += steps
    student.eval()
