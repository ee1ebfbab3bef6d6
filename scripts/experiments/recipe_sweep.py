"""Learning-rate sweep of each restoration method, on a share of the experiment's token budget, scored by
held-out token loss inside the native window and at the target length.

Every method is swept over the same rates and judged by the same rule: the mean of its validation token
loss at the short and the long length (both are what a context extension must keep), so no method's recipe
is copied from another's. The teacher, the scaled student and the data are the experiment's own (run its
`scale` targets first). One JSON line per run (and one for the native and the unrestored model).
With --write-config, the experiment config with each swept method's rate set to its winner is written
there, so a study can run on the sweep's choice in the same sitting (the rule picks; nobody hand-tunes).

    PYTHONPATH=.:kernels python scripts/experiments/recipe_sweep.py --config config/smollm2-h200.yaml \
        --scaling linear-4x --out sweep.jsonl [--methods ...] [--lrs ...] [--fraction 0.25] \
        [--write-config chosen.yaml]
"""
import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ard import config as ard_config
from ard import restore
from ard.paths import Layout
from ard.teachers.pretrain import validation_loss


def held_out_losses(model, tokens, device, short, long):
    """Validation token loss at the short and the long length, in bf16 as the methods train."""
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return {
            "val_loss_short": validation_loss(model, tokens, short, device, batches=4, batch_size=4),
            "val_loss_long": validation_loss(model, tokens, long, device, batches=len(tokens) // (long + 1), batch_size=1),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--scaling", required=True)
    parser.add_argument("--methods", nargs="+", default=["linearard", "cpt", "longred", "logits_kd"])
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3, 3e-3])
    parser.add_argument("--fraction", type=float, default=0.25, help="share of each method's token budget")
    parser.add_argument("--short", type=int, default=2048)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/recipe-sweep")
    parser.add_argument("--write-config", help="write the config with each method's winning rate here")
    args = parser.parse_args()

    config = ard_config.load(args.config)
    layout = Layout(config["outdir"])
    spec = ard_config.scaling_spec(config, args.scaling)
    long = int(ard_config.native_context(config, layout.teacher) * spec["factor"])
    device = torch.device("cuda")
    tokens = np.load(layout.data / "tokens" / "val.npy")
    out = open(args.out, "a")
    scores = {}

    from transformers import AutoModelForCausalLM

    for name, path in (("native", layout.teacher), (f"{args.scaling}/none", layout.model(args.scaling, "none"))):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(device).eval()
        out.write(json.dumps({"run": name, **held_out_losses(model, tokens, device, args.short, long)}) + "\n")
        out.flush()
        del model
    for method in args.methods:
        for lr in args.lrs:
            trial = copy.deepcopy(config)
            section = trial["restore"][method]
            section["lr"] = lr
            section["token_budget"] = int(section["token_budget"] * args.fraction)
            work = Path(args.work) / f"{method}-{lr:g}"
            started = time.perf_counter()
            student = restore.run(trial, method, args.scaling, layout.teacher, layout.model(args.scaling, "none"),
                                  layout.data, work / "ckpt", work / "out")
            info = json.loads((work / "out" / "restore.json").read_text())
            row = {"run": f"{args.scaling}/{method}", "lr": lr, "train_tokens": info["train_tokens"],
                   "steps": info["steps"], "final_loss": info["final_loss"], "train_seconds": info["wall_seconds"],
                   "seconds": round(time.perf_counter() - started, 1),
                   **held_out_losses(student.eval(), tokens, device, args.short, long)}
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(row, flush=True)
            scores.setdefault(method, {})[lr] = (row["val_loss_short"] + row["val_loss_long"]) / 2
            del student
            torch.cuda.empty_cache()
            shutil.rmtree(work)
    if args.write_config:
        write_chosen_config(args.config, scores, args.write_config)


def write_chosen_config(source, scores, path):
    """`source` as written, with each swept method's lr set to the one of lowest mean held-out loss."""
    chosen = yaml.safe_load(Path(source).read_text())
    for method, by_lr in scores.items():
        chosen["restore"][method]["lr"] = min(by_lr, key=lambda lr: by_lr[lr] if np.isfinite(by_lr[lr]) else np.inf)
        print(f"{method}: lr {chosen['restore'][method]['lr']:g}", flush=True)
    Path(path).write_text(yaml.safe_dump(chosen, sort_keys=False))


if __name__ == "__main__":
    main()
