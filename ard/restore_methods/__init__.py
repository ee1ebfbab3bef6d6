"""Restoration methods: one module per method, each exposing `Objective(hp, ctx)`.

A method is a key of `config["restore"]` (workflow/schemas/restore.schema.yaml). A key holding `stages`
is a sequence of other methods trained one after another on one LoRA adapter, each stage with the
hyperparameters of its own section. This module stays free of torch so the Snakefile can import it.
"""
import importlib

# method name → module under ard.restore_methods (method names may hold characters modules cannot)
MODULES = {"linearard": "linearard", "cpt": "cpt", "longred": "longred", "logits_kd": "logits_kd"}


def stage_plan(config, method):
    """[(stage name, its hyperparameters)] for `method`; ValueError when the method does not exist."""
    sections = config["restore"]
    if method not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise ValueError(f"unknown restore method {method!r} (known: {known})")
    names = sections[method].get("stages", [method])
    missing = [name for name in names if name not in MODULES]
    if missing:
        raise ValueError(f"restore method {method!r}: stage {missing[0]!r} is not a trainable method")
    return [(name, sections[name]) for name in names]


def model_spec(config, method):
    """The method's own section: its LoRA adapter, dtype and checkpointing (a sequence shares one)."""
    return config["restore"][method]


def fingerprint_sections(config, method):
    """Every config section a method's result depends on (for the rule's params tracking)."""
    if method not in config["restore"]:
        return None
    return {"method": config["restore"][method], "stages": dict(stage_plan(config, method))}


def objective_class(name):
    return importlib.import_module(f"{__name__}.{MODULES[name]}").Objective
