"""LinearARD restoration on one and several GPUs: seconds per optimizer step, tokens/s and peak memory per
GPU, and whether every GPU count takes the same steps.

Each run is the pipeline's own restore stage (`ard restore`, under torchrun for several GPUs, as the
Snakemake rule launches it) on a teacher, its scaled student (`ard scale`) and random training tokens,
all written under --work: a random-weight model of a named shape (`--shape llama2-7b`, the paper's model
with its 4K native window) or a model directory (`--teacher`, e.g. the converted SmolLM2). Step time is the
median over the steps after --warmup from each run's train_log.csv (rank 0's clock, the GPU synchronised
at the end of every step); peak memory is rank 0's GPU.

    python scripts/experiments/restore_gpus.py --shape llama2-7b --gpus 1 2 --steps 12 --out bench.csv
    python scripts/experiments/restore_gpus.py --teacher DIR --factor 4 --lora-rank 64 --lora-alpha 128 \\
        --gpus 1 2 --global-batch 2 --out agree.csv

Without --global-batch every GPU reads one sequence a step (the throughput comparison); with it every GPU
count trains on the same global batches, and each row gives its largest per-step loss difference from
the first GPU count's. LoRA dropout is 0, so that the slices of a batch see the masks the whole batch sees.
"""
import argparse
import csv
import datetime
import os
import statistics
import subprocess
from pathlib import Path

import numpy as np
import torch
import yaml

from ard.restore_methods import launcher

SHAPES = {
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rope_theta=10000.0),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, rope_theta=10000.0),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
COLUMNS = ["date", "device", "model", "gpus", "global_batch", "seq_len", "lora_rank", "steps", "s_per_step",
           "tokens_per_s", "speedup", "peak_memory_gib", "final_loss", "max_loss_diff"]


def random_teacher(shape, dtype, device, out):
    """A random-weight LLaMA of `shape` with a small byte-level tokenizer (the tokens are random ids)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer.train_from_iterator(["a random-weight model"], trainers.BpeTrainer(vocab_size=64, special_tokens=["<s>", "<unk>"]))
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])  # build a 7B model in bf16 directly, on the GPU
    try:
        with torch.device(device):
            model = LlamaForCausalLM(LlamaConfig(**SHAPES[shape]))
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", unk_token="<unk>").save_pretrained(out)
    del model
    return out


def write_config(work, teacher, args, gpus, batch):
    config = {
        "experiment": "restore-gpus", "outdir": str(work / "results"), "device": args.device, "threads": 4,
        "teacher": {"source": "path", "path": str(teacher)},
        "scalings": [{"type": "linear", "factor": args.factor}],
        "restores": ["none", "linearard"],
        "restore": {"linearard": {
            "steps": args.steps, "batch_size": batch, "seq_len": args.seq_len, "lr": args.lr, "warmup_steps": 0,
            "lora": {"rank": args.lora_rank, "alpha": args.lora_alpha, "dropout": 0.0}, "dtype": args.dtype,
            "gradient_checkpointing": True, "checkpoint_every": args.steps, "gpus": gpus,
        }},
    }
    path = work / f"config-{gpus}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(command):
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def measure(log, warmup, tokens_per_step):
    elapsed = [float(row["elapsed_s"]) for row in log]
    seconds = float(statistics.median(np.diff([0.0, *elapsed])[warmup:]))
    return {"s_per_step": round(seconds, 4), "tokens_per_s": round(tokens_per_step / seconds, 1),
            "peak_memory_gib": round(max(float(row["peak_memory_mb"]) for row in log) / 1024, 2),
            "final_loss": float(log[-1]["loss"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--shape", choices=sorted(SHAPES), help="a random-weight model of this shape")
    model.add_argument("--teacher", help="a model directory (native RoPE)")
    parser.add_argument("--gpus", nargs="+", type=int, default=[1, 2], help="GPU counts (ranks on CPU)")
    parser.add_argument("--global-batch", type=int, help="sequences per step at every GPU count (default: one per GPU)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the step time")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (default: the native context)")
    parser.add_argument("--factor", type=float, default=8.0, help="linear RoPE scaling factor of the student")
    parser.add_argument("--lora-rank", type=int, default=1024)
    parser.add_argument("--lora-alpha", type=float, default=2048)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default="/tmp/restore-gpus")
    parser.add_argument("--out", required=True, help="CSV to append the rows to")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    teacher = Path(args.teacher) if args.teacher else work / "teacher"
    if args.shape and not (teacher / "config.json").is_file():
        random_teacher(args.shape, args.dtype, args.device, teacher)
    from transformers import AutoConfig

    native = AutoConfig.from_pretrained(teacher).max_position_embeddings
    args.seq_len = args.seq_len or native
    scaling = f"linear-{args.factor:g}x"
    student = work / "student"
    tokens = work / "data" / "tokens" / "train.npy"
    if not tokens.is_file():
        tokens.parent.mkdir(parents=True)
        vocab = AutoConfig.from_pretrained(teacher).vocab_size
        np.save(tokens, np.random.default_rng(0).integers(0, vocab, 1 << 20).astype(np.int32))

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    rows, first_losses = [], None
    for gpus in args.gpus:
        batch = args.global_batch or gpus
        config = write_config(work, teacher, args, gpus, batch)
        if not (student / "config.json").is_file():
            run([*launcher(1), "scale", "--config", str(config), "--scaling", scaling, "--teacher", str(teacher),
                 "--out", str(student)])
        out = work / f"out-{gpus}"
        run([*launcher(gpus), "restore", "--config", str(config), "--method", "linearard", "--scaling", scaling,
             "--seed", "0", "--teacher", str(teacher), "--student", str(student), "--data", str(work / "data"),
             "--checkpoints", str(work / f"ckpt-{gpus}"), "--out", str(out)])
        log = read_log(out / "train_log.csv")
        losses = [float(row["loss"]) for row in log]
        row = {"date": datetime.date.today().isoformat(), "device": device_name,
               "model": args.shape or os.path.basename(os.path.normpath(args.teacher)), "gpus": gpus,
               "global_batch": batch, "seq_len": args.seq_len, "lora_rank": args.lora_rank, "steps": args.steps,
               **measure(log, args.warmup, batch * args.seq_len)}
        row["speedup"] = round(row["tokens_per_s"] / rows[0]["tokens_per_s"], 3) if rows else 1.0
        if args.global_batch:  # the same batches: the same curve
            first_losses = first_losses or losses
            row["max_loss_diff"] = max(abs(a - b) for a, b in zip(losses, first_losses))
        rows.append(row)
        print({key: row.get(key) for key in COLUMNS}, flush=True)

    new = not Path(args.out).is_file()
    with open(args.out, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="")
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
