"""Shared pieces of the evaluation tests: a tiny corpus, a data-stage stand-in and a random tiny model."""
import shutil
from pathlib import Path

import yaml

from eval_fixtures.tiny import build_data_dir, build_model_dir

NATIVE = 256


def write_config(path, outdir, **evaluation):
    config = {
        "experiment": "evaltest",
        "outdir": str(outdir),
        "device": "cpu",
        "threads": 1,
        "teacher": {"architecture": {"max_position_embeddings": NATIVE, "hidden_size": 64}},
        "scalings": [{"type": "linear", "factor": 4}],
        "restores": ["none"],
        "evaluation": {"limit": 3, **evaluation},
    }
    Path(path).write_text(yaml.safe_dump(config))
    return Path(path)


def build_workspace(root):
    """data/ (splits + tokenizer), model/ (native context NATIVE) and config.yaml under root."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    data = build_data_dir(root / "data", NATIVE)
    model = build_model_dir(root / "model", data / "tokenizer", native_context=NATIVE)
    config = write_config(root / "config.yaml", root / "results")
    return data, model, config
