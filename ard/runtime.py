"""Process set-up shared by every stage: device, threads, seeds, and the stage's error exit."""
import argparse
import functools
import random
import sys


def resolve_device(config):
    import torch

    wanted = config["device"]
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        from ard.config import ConfigError

        raise ConfigError("config error at device: cuda is asked for, but no CUDA device is visible")
    return torch.device(wanted)


def setup(config, seed_offset: int = 0):
    """Seed every generator, cap CPU threads and pick the device named by the config (a torch.device)."""
    # Imported here so that a stage's argument and config errors are reported before torch loads.
    import numpy as np
    import torch

    torch.set_num_threads(config["threads"])
    seed = config["seed"] + seed_offset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return resolve_device(config)


def stage_parser(prog, description):
    """The argument parser of one stage's CLI; its module docstring, as written, is the --help text."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


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
