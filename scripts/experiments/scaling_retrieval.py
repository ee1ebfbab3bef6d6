"""Which RoPE scalings keep the GPU teacher's retrieval skill with no restoration (docs/teacher-retrieval.md).

Pretrains the GPU demonstration's teacher (config/gpu-demo.yaml; its training is deterministic), applies
each ×8 scaling of SCALINGS through the scale stage, and prints greedy pass-key accuracy at the native
length and at twice it. Needs results/data with the 4096-token vocabulary (the embedded default's data
stage) and a GPU.
    PYTHONPATH=. python scripts/experiments/scaling_retrieval.py OUT.jsonl WORK_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np

from ard import config as ard_config
from ard import scale, teacher
from ard.data import load_tokenizer
from ard.runtime import resolve_device

DATA = Path("results/data")
SCALINGS = [{"type": kind, "factor": 8} for kind in ("linear", "yarn", "llama3", "abf", "dynamic")]
EPISODES = 25


def run(config, out, work):
    from transformers import AutoModelForCausalLM

    config["scalings"] = SCALINGS
    native = ard_config.native_context(config)
    teacher.pretrain(config, DATA, work / "teacher")
    tokenizer = load_tokenizer(DATA / "tokenizer")
    val = np.load(DATA / "tokens" / "val.npy")
    device = resolve_device(config)
    with open(out, "w") as rows:
        for name in ["native"] + [ard_config.scaling_name(s) for s in SCALINGS]:
            path = work / "teacher" if name == "native" else work / name
            if name != "native":
                scale.build(config, name, work / "teacher", path)
            model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
            for length in (native, 2 * native):
                accuracy = teacher.passkey_accuracy(model, tokenizer, val, length, EPISODES, config["seed"] + 1, device)
                row = {"variant": name, "context": length, "passkey_accuracy": accuracy}
                print(json.dumps(row), flush=True)
                rows.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    run(ard_config.load("config/gpu-demo.yaml"), Path(sys.argv[1]), Path(sys.argv[2]))
