"""Process set-up shared by every stage: device, threads, seeds, and the stage's error exit."""
import functools
import random
import sys

import numpy as np
import torch


def resolve_device(config) -> torch.device:
    wanted = config["device"]
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device: cuda, but no CUDA device is visible")
    return torch.device(wanted)


def setup(config, seed_offset: int = 0) -> torch.device:
    """Seed every generator, cap CPU threads and pick the device named by the config."""
    torch.set_num_threads(config["threads"])
    seed = config["seed"] + seed_offset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return resolve_device(config)


def stage_main(func):
    """Run a stage's main(argv); expected errors (bad config, bad input, unreadable files) exit 1 with one line."""

    @functools.wraps(func)
    def wrapper(argv=None):
        from ard.config import ConfigError

        try:
            return func(argv) or 0
        except (ConfigError, OSError, ValueError) as error:
            sys.stderr.write(f"error: {error}\n")
            return 1

    return wrapper
