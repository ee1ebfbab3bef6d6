"""Restoration methods: one module per method, each exposing `Objective(hp, ctx)`.

A method is a key of `config["restore"]` (workflow/schemas/restore.schema.yaml). A key holding `stages`
is a sequence of other methods trained one after another on one LoRA adapter, each stage with the
hyperparameters of its own section. Any other key is a named variant of a method (its section's `method`):
the same training with the variant's own hyperparameters. This module stays free of torch so the
Snakefile can import it.
"""
import importlib
import sys

# method name → module under ard.restore_methods (method names may hold characters modules cannot)
MODULES = {"linearard": "linearard", "cpt": "cpt", "longred": "longred", "logits_kd": "logits_kd"}
# Which seeds and scalings a restore runs on decides which jobs exist, not what one job computes.
RUN_KEYS = ("seeds", "scalings")


def launcher(ranks):
    """The command (argv) that runs `python -m ard` as `ranks` data-parallel processes: torchrun over
    one process per GPU (or per CPU share) when ranks > 1."""
    if ranks == 1:
        return [sys.executable, "-m", "ard"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "ard"]


def is_linearard(method):
    """Whether a method trains LinearARD, alone or in a sequence (`linearard+cpt`)."""
    return "linearard" in str(method).split("+")


def base_method(config, restore):
    """The method a restore trains: a named variant's `method`, else the restore itself."""
    return config["restore"][restore].get("method", restore)


def stage_plan(config, method):
    """[(stage name, its hyperparameters)] for `method` (a method or a named variant); ValueError when
    there is no such restore. A named variant's single stage trains its base method on its own section."""
    sections = config["restore"]
    if method not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise ValueError(f"unknown restore method {method!r} (known: {known})")
    section = sections[method]
    if "stages" in section:
        plan = [(name, sections[name]) for name in section["stages"]]
    else:
        plan = [(base_method(config, method), section)]
    missing = [name for name, _ in plan if name not in MODULES]
    if missing:
        raise ValueError(f"restore method {method!r}: stage {missing[0]!r} is not a trainable method")
    return plan


def planned_tokens(config, method):
    """The training tokens a method's stages are set to (a stage bounded by steps instead counts 0)."""
    return sum(hp["token_budget"] or 0 for _, hp in stage_plan(config, method))


def model_spec(config, method):
    """The method's own section: its LoRA adapter, dtype and checkpointing (a sequence shares one)."""
    return config["restore"][method]


def _trained(section):
    return {key: value for key, value in section.items() if key not in RUN_KEYS}


def fingerprint_sections(config, method):
    """Every config section a method's result depends on (for the rule's params tracking and checkpoint
    resumption), less the keys that only choose which runs exist: adding a seed reruns nothing else."""
    if method not in config["restore"]:
        return None
    return {"method": _trained(config["restore"][method]),
            "stages": {name: _trained(hp) for name, hp in stage_plan(config, method)}}


def objective_class(name):
    return importlib.import_module(f"{__name__}.{MODULES[name]}").Objective
