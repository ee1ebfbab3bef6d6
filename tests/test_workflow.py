"""The whole DAG on a tiny config: summary rows, a no-op rerun, and reruns limited to what a change touches."""
import re

import pandas as pd
import pytest
import yaml

from ard import plots
from helpers import REPO, snakemake, write_config

pytestmark = pytest.mark.slow


def _planned_jobs(dry_run_output):
    """Job counts from the 'Job stats' table of a dry run."""
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["outdir"] = str(workdir / "results")
    configfile = write_config(workdir / "tiny.yaml", config)
    result = snakemake(workdir, configfile)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, configfile, config


def test_summary_has_every_variant_task_and_length(finished_run):
    workdir, _, config = finished_run
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert set(summary.variant) == {"native/none", "linear-2x/none", "linear-2x/linearard"}
    short = summary[summary.context_length.isna()]
    assert short.task.nunique() >= 2
    long = summary[summary.context_length.notna()]
    assert long.context_length.nunique() >= 2
    assert summary.value.notna().all()
    perplexity = summary[summary.metric.str.contains("perplexity")]
    assert len(perplexity) and (perplexity.value > 1).all() and perplexity.value.map(float).lt(float("inf")).all()
    assert (summary.experiment == "tiny").all() and (summary.config_sha.str.len() == 12).all()
    linearard = summary[summary.variant == "linear-2x/linearard"]
    assert (linearard.train_tokens > 0).all()
    assert (workdir / "results" / "summary.md").read_text().count("linear-2x/linearard") >= 1
    figures = [p.name for p in (workdir / "results" / "plots").iterdir() if not p.name.startswith(".")]  # not Snakemake's marker
    assert sorted(figures) == sorted(plots.FIGURES)


def test_rerun_right_after_does_nothing(finished_run):
    workdir, configfile, _ = finished_run
    result = snakemake(workdir, configfile)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_a_restore_hyperparameter_reruns_only_that_branch(finished_run):
    workdir, _, config = finished_run
    changed = {**config, "restore": {"linearard": {**config["restore"]["linearard"], "lora": {"rank": 4}}}}
    configfile = write_config(workdir / "changed.yaml", changed)
    result = snakemake(workdir, configfile, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = _planned_jobs(result.stdout + result.stderr)
    suites = yaml.safe_load((workdir / "results" / "config.yaml").read_text())["evaluation"]["suites"]
    assert jobs.pop("restore") == 1 and jobs.pop("report") == 1 and jobs.pop("plots") == 1 and jobs.pop("all") == 1
    assert jobs.pop("evaluate") == len(suites)  # the changed variant only, once per suite
    assert jobs == {}, f"unexpected jobs rerun: {jobs}"
