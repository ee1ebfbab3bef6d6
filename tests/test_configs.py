"""Every shipped config validates and plans its DAG (a dry run: nothing is loaded from a hub)."""
import re

import pytest

from ard import config as ard_config
from helpers import REPO, snakemake

CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_plans_every_variant(tmp_path, path):
    # A --configfile is complete on its own: nothing of config/default.yaml is merged into it.
    config = ard_config.load(path)
    result = snakemake(tmp_path, path, "-n")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", (result.stdout + result.stderr).split("Job stats:")[1], flags=re.M))
    resolved = ard_config.load(tmp_path / ard_config.yaml.safe_load(path.read_text()).get("outdir", "results") / "config.yaml")
    runs = ard_config.runs(resolved)
    evaluations = int(jobs["evaluate"]) + int(jobs.get("evaluate_restored", 0))
    assert evaluations == len(runs) * len(resolved["evaluation"]["suites"])
    assert int(jobs.get("restore", 0)) == sum(restore != "none" for _, restore, _ in runs)
    assert resolved == config


def test_matrix_lists_every_scaling_and_restore(tmp_path):
    result = snakemake(tmp_path, REPO / "config" / "matrix.yaml", "-n")
    planned = set(re.findall(r"wildcards: scaling=([\w.-]+), restore=([\w.+-]+)", result.stdout + result.stderr))
    scalings = {f"{kind}-4x" for kind in ("linear", "dynamic", "yarn", "longrope", "llama3", "abf")}
    restores = {"linearard", "cpt", "longred", "logits_kd", "linearard+cpt"}
    assert {(s, r) for s in scalings for r in restores} <= planned


def test_command_line_values_inside_lists_and_mappings_are_read_as_yaml():
    overrides = {"scalings": [{"type": "linear", "factor": "0.5"}], "restore": {"linearard": {"steps": "30", "lr": "3e-3",
                 "gradient_checkpointing": "true", "seq_len": "null", "lora": {"target_modules": ["q_proj"]}}},
                 "experiment": "007", "threads": 2}
    typed = ard_config.typed_overrides(overrides)
    assert typed["scalings"] == [{"type": "linear", "factor": 0.5}]
    assert typed["restore"]["linearard"] == {"steps": 30, "lr": 0.003, "gradient_checkpointing": True, "seq_len": None,
                                             "lora": {"target_modules": ["q_proj"]}}
    assert typed["experiment"] == "007" and typed["threads"] == 2  # top-level values: Snakemake already typed them
