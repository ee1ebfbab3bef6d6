"""Stage `restore`: train a LoRA adapter on the scaled student by one restoration method, then merge it.

Outputs (VARIANT_DIR, written atomically):
  model/           merged HF model dir: the student's scaled rope_parameters and max_position_embeddings,
                   tokenizer files; loads with plain AutoModelForCausalLM.from_pretrained
  adapter/         the peft LoRA adapter (base: the student dir)
  train_log.csv    one row per optimizer step: stage, step, loss, loss_<part> (per relation and layer group
                   for LinearARD), grad_norm, lr, tokens (cumulative), tokens_per_s, peak_memory_mb, elapsed_s
  restore.json     method (the restore's name), base_method (the method it trains: a named variant's
                   `method`, else the same), stages, train_tokens (tokens the student read in training),
                   wall_seconds (time in training steps, summed over resumed attempts), export_seconds,
                   steps, final_loss, resumed_from_step, the hyperparameters, native and target context
Checkpoints go to CKPT_DIR every `checkpoint_every` steps, outside VARIANT_DIR so that they outlive a
killed job; a rerun of the same job resumes from the last one (a changed config starts afresh). They are
deleted once VARIANT_DIR is in place: the finished output is then the thing to keep.
"""
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ard import config as ard_config
from ard import restore_methods
from ard.io import atomic_dir, write_json
from ard.runtime import setup, stage_main, stage_parser

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args(argv):
    parser = stage_parser("ard restore", __doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="resolved experiment config (YAML)")
    parser.add_argument("--method", required=True,
                        help="a key of the config's restore section: a method (linearard) or a named variant (cpt-10x)")
    parser.add_argument("--scaling", required=True, help="scaling variant name, e.g. linear-4x")
    parser.add_argument("--seed", type=int,
                        help="restoration seed (one of the restore's seeds; default: the config's seed)")
    parser.add_argument("--teacher", required=True, help="native-RoPE teacher model dir")
    parser.add_argument("--student", required=True, help="scaled-RoPE student model dir (the variant <scaling>/none)")
    parser.add_argument("--data", required=True, help="data stage dir (tokens/train.npy is trained on)")
    parser.add_argument("--checkpoints", required=True, help="dir for resumable checkpoints (deleted on success)")
    parser.add_argument("--out", required=True, help="variant dir to write")
    return parser.parse_args(argv)


def _model_dir(path, what):
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{what} model directory not found (no config.json): {path}")
    return path


def _load(path, dtype, device):
    from transformers import AutoModelForCausalLM

    from ard.restore_methods import capture

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    return capture.enable(model)


def _student(path, spec, device):
    from peft import LoraConfig, get_peft_model

    base = _load(path, DTYPES[spec["dtype"]], device)
    if spec["gradient_checkpointing"]:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = spec["lora"]
    config = LoraConfig(
        r=lora["rank"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, config)


def _export(student, student_dir, tokenizer, out):
    """adapter/ from the trained peft model; model/ = a fresh load of the student with the adapter merged."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    student.save_pretrained(out / "adapter")
    base = AutoModelForCausalLM.from_pretrained(student_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload()
    merged.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")


def _input_signature(*paths):
    """Names, sizes and mtimes of the input files: a checkpoint left by a killed job resumes only on the
    same teacher, student and data (Snakemake reruns this job after an upstream stage is redone)."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _write_log(path, rows):
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def run(config, method, scaling, teacher_dir, student_dir, data_dir, checkpoints, out, on_step=None):
    """Train `method`, write VARIANT_DIR `out` and return the trained peft model.

    `on_step(step)` is called after every optimizer step (tests interrupt runs through it).
    """
    from ard.restore_methods import distributed
    from ard.restore_methods.context import Context
    from ard.restore_methods.training import Progress, train_stage

    if method == "none":
        raise ValueError("restore method 'none' is the scaled student itself; the scale stage writes it")
    plan = restore_methods.stage_plan(config, method)
    spec = restore_methods.model_spec(config, method)
    scaling_spec = ard_config.scaling_spec(config, scaling)
    teacher_dir = _model_dir(teacher_dir, "teacher")
    student_dir = _model_dir(student_dir, "student")
    tokens_path = Path(data_dir) / "tokens" / "train.npy"
    if not tokens_path.is_file():
        raise FileNotFoundError(f"training tokens not found: {tokens_path}")

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student_dir)  # read now: a missing one must not cost a training run
    device = setup(config)
    ranks = distributed.start(device.type)
    device = distributed.local_device(device)
    if device.type == "cpu" and ranks.world > 1:  # ranks on one host share its cores
        torch.set_num_threads(max(1, config["threads"] // ranks.world))
    teacher = _load(teacher_dir, DTYPES[spec["dtype"]], device).eval().requires_grad_(False)
    student = _student(student_dir, spec, device)
    native = config["teacher"]["native_context"] or teacher.config.max_position_embeddings
    ctx = Context(
        teacher=teacher,
        student=student,
        tokens=np.load(tokens_path, mmap_mode="r"),
        native_len=native,
        target_len=round(scaling_spec["factor"] * native),
        device=device,
        seed=config["seed"],
        ranks=ranks,
    )
    job = json.dumps({"sections": restore_methods.fingerprint_sections(config, method), "scaling": scaling_spec,
                      "seed": config["seed"], "inputs": _input_signature(teacher_dir, student_dir, tokens_path)},
                     sort_keys=True)
    progress = Progress()
    for index, (name, hp) in enumerate(plan):
        ctx.stage = index
        objective = restore_methods.objective_class(name)(hp, ctx)
        train_stage(name, objective, hp, ctx, checkpoints, job, progress, on_step)

    if not ranks.main:  # every rank holds the same adapter; rank 0 writes it
        distributed.finish(ranks)
        return student
    began = time.perf_counter()
    with atomic_dir(out) as tmp:
        _export(student, student_dir, tokenizer, tmp)
        _write_log(tmp / "train_log.csv", progress.rows)
        write_json(tmp / "restore.json", {
            "method": method,
            "base_method": restore_methods.base_method(config, method),
            "stages": [name for name, _ in plan],
            "scaling": scaling,
            "train_tokens": progress.tokens,
            "wall_seconds": round(progress.seconds, 3),
            "export_seconds": round(time.perf_counter() - began, 3),
            "steps": progress.steps,
            "final_loss": progress.rows[-1]["loss"],
            "resumed_from_step": progress.resumed_from,
            "native_context": ctx.native_len,
            "target_context": ctx.target_len,
            "trainable_parameters": sum(p.numel() for p in student.parameters() if p.requires_grad),
            "device": str(device),
            "ranks": ranks.world,
            "seed": config["seed"],
            "hyperparameters": {"method": spec, "stages": dict(plan)},
        })
    shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.finish(ranks)
    return student


@stage_main
def main(argv=None):
    args = parse_args(argv)
    config = ard_config.load(args.config)
    if args.seed is not None:
        config["seed"] = args.seed  # what this restoration draws from: data order, LoRA init, dropout
    run(config, args.method, args.scaling, args.teacher, args.student, args.data, args.checkpoints, args.out)
