"""Running the workflow and the stage CLIs the way a user does, from tests."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def write_config(path, config):
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir, configfile, *args, timeout=900):
    """`snakemake` in its own working directory (own .snakemake/, logs/), with the given config."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ard(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ard", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def lm_eval_cli(workdir, model_dir, task, max_length, limit=None):
    """The plain `lm_eval --model hf` CLI on a model directory and one local task, run from `workdir` (the
    task YAMLs read results/evaldata/... relative to the current folder); results under workdir/lm_eval_out."""
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},max_length={max_length}",
        "--device", "cpu", "--batch_size", "4", "--include_path", str(REPO / "eval_configs"), "--tasks", task,
        "--output_path", str(Path(workdir) / "lm_eval_out"), *(["--limit", str(limit)] if limit else []),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, env=env)


def lm_eval_in_process(workdir, model, tokenizer_dir, task, max_length, limit):
    """lm_eval.simple_evaluate on a model object, from `workdir` as lm_eval_cli runs; the task's result dict."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    lm = HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir), batch_size=4,
              max_length=max_length, device="cpu")
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=[task], limit=limit,
                                      task_manager=TaskManager(include_path=str(REPO / "eval_configs")))
    finally:
        os.chdir(previous)
    return out["results"][task]
