# Helpers shared by every rule: config validation, the output layout, and per-rule fingerprints
# (rule params) so that changing one config value reruns exactly the jobs that read it.
import json
import re
import shlex
import sys

import yaml
from snakemake.utils import update_config

from ard import config as ard_config
from ard import restore_methods
from ard.paths import JobRecords, Layout
from ard.teachers import is_real as is_real_teacher

# Nested --config values arrive as strings ('0.5'); read them as the YAML values they spell.
update_config(config, ard_config.typed_overrides(workflow.config_settings.config or {}))
try:
    ard_config.validate(config)
except ard_config.ConfigError as error:
    sys.stderr.write(f"{error}\n")
    sys.exit(1)

L = Layout(config["outdir"])
# Stages run under the interpreter that runs Snakemake, so an unactivated venv works too.
ARD = f'"{sys.executable}" -m ard'
EXP = config["experiment"]
VARIANTS = ard_config.variants(config)
SCALINGS = [ard_config.scaling_name(s) for s in config["scalings"]]
RESTORES = [r for r in config["restores"] if r != "none"]
SUITES = config["evaluation"]["suites"]
REAL_TEACHER = is_real_teacher(config)

wildcard_constraints:
    scaling="|".join(map(re.escape, SCALINGS)),
    restore="|".join(map(re.escape, RESTORES)) or "$^",
    suite="|".join(map(re.escape, SUITES)),
    seed=r"\d+",


def write_resolved_config():
    """Every CLI reads this one file, so hand-run stages see what the rules saw (--config overrides too)."""
    text = yaml.safe_dump(config, sort_keys=True)
    path = L.resolved_config
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


write_resolved_config()
CONFIG = str(L.resolved_config)


def fingerprint(*sections):
    """The config values a job depends on, as one string for Snakemake's params tracking."""
    return json.dumps([config.get(s) if isinstance(s, str) else s for s in sections], sort_keys=True)


# What a job asks a scheduler for, before the config's `resources` (sized for the embedded default).
RESOURCE_DEFAULTS = {"mem_mb": 4096, "runtime": 60}
RULE_RESOURCES = {
    "teacher": {"mem_mb": 8192, "runtime": 120},
    "restore": {"mem_mb": 16384, "runtime": 240},
    "evaluate": {"mem_mb": 16384, "runtime": 120},
}
ON_GPU = config["device"] != "cpu"


def job_resources(rule_name, gpu=0):
    """Snakemake resources of a rule: the defaults, the config's `default`, then its own section."""
    settings = config["resources"]
    merged = {**RESOURCE_DEFAULTS, **RULE_RESOURCES.get(rule_name, {}), **settings.get("default", {}),
              **settings.get(rule_name, {})}
    return {**merged, "gpu": gpu if ON_GPU else 0}


# Job order when jobs wait for resources: the longest restores first (one started last would hold a
# time-bounded run, e.g. a part, open alone), every evaluation before any restore, and the evaluations
# run by run (the config's run order, then its suite order), so that such a run ends with whole runs
# evaluated rather than many restored models each missing a suite: a run cut off there is restored
# again from scratch. A suite's evaluation data comes first of all: every evaluation of it waits on it.
def restore_priority(wildcards):
    return restore_methods.planned_tokens(config, wildcards.restore)


LOWEST_EVALUATION_PRIORITY = 1 + max((restore_methods.planned_tokens(config, r) for r in RESTORES), default=0)
EVALUATION_ORDER = [
    (scaling, restore, None if seed is None else str(seed), suite)
    for scaling, restore, seed in ard_config.runs(config)
    for suite in SUITES
]
EVALUATION_PRIORITIES = {
    job: LOWEST_EVALUATION_PRIORITY + len(EVALUATION_ORDER) - 1 - rank for rank, job in enumerate(EVALUATION_ORDER)
}
EVALDATA_PRIORITY = LOWEST_EVALUATION_PRIORITY + len(EVALUATION_ORDER)


def evaluation_priority(wildcards):
    job = (wildcards.scaling, wildcards.get("restore", "none"), wildcards.get("seed"), wildcards.suite)
    return EVALUATION_PRIORITIES[job]


def restore_launcher(restore):
    """`python -m ard`, or torchrun over the method's `gpus` ranks. One rank keeps ARD's spelling: the
    launcher is a rule param, and a changed param would rerun restores that already exist."""
    ranks = config["restore"][restore]["gpus"]
    return ARD if ranks == 1 else shlex.join(restore_methods.launcher(ranks))


RECORDS = JobRecords(EXP)
log_path, benchmark_path = RECORDS.log, RECORDS.benchmark


def eval_results(wildcards=None):
    return [str(L.eval_result(s, r, suite, seed)) for s, r, seed in ard_config.runs(config) for suite in SUITES]


def restored_runs():
    return [(s, r, seed) for s, r, seed in ard_config.runs(config) if r != "none"]


def restore_infos(wildcards=None):
    """restore.json of every restored run: the report reads their training tokens."""
    return [str(L.variant(s, r, seed) / "restore.json") for s, r, seed in restored_runs()]


def train_logs(wildcards=None):
    return [str(L.variant(s, r, seed) / "train_log.csv") for s, r, seed in restored_runs()]
