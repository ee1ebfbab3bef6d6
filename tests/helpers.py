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
