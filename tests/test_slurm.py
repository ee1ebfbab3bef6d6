"""The workflow on a real one-node SLURM cluster (Debian's slurmctld, slurmd, munge; scripts/slurm_local.sh)
through the slurm profile and snakemake-executor-plugin-slurm: every job an sbatch job, the same summary
as the local run; and the GPU requests of a real-model config."""
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from helpers import REPO, ard, snakemake, write_config

pytestmark = pytest.mark.slow
SLURM_LOCAL = REPO / "scripts" / "slurm_local.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm"


@pytest.fixture(scope="module")
def cluster():
    missing = [tool for tool in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        pytest.fail(f"a local SLURM cluster needs root and {', '.join(missing) or 'its daemons'}"
                    " (scripts/install.sh --test installs slurm-wlm and munge)")
    started = subprocess.run(["bash", str(SLURM_LOCAL), "start"], capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield
    finally:
        subprocess.run(["bash", str(SLURM_LOCAL), "stop"], capture_output=True, timeout=120)
        assert subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 1  # nothing left


def test_tiny_config_through_slurm_gives_the_local_summary(cluster, finished_run, tmp_path):
    """Every rule as an sbatch job. One seed and the short suite keep this under CI's clock (the plugin's
    status checks widen by 10 s each time no job has finished); the other seeds and suites add jobs of the
    same rules. The local reference is the report over the finished local run's results for that seed
    and suite, which are what a run of this config locally computes."""
    local_dir, _, config = finished_run
    reduced = {**config, "seeds": [0], "evaluation": {**config["evaluation"], "suites": ["short"]}}
    configfile = write_config(tmp_path / "tiny.yaml", {**reduced, "outdir": str(tmp_path / "results")})
    result = snakemake(tmp_path, configfile, "--workflow-profile", str(PROFILE), "--slurm-no-account",
                       "--slurm-init-seconds-before-status-checks", "2", "--jobs", "2", timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    submitted = set(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", result.stdout + result.stderr))
    rules = set(re.findall(r"^rule (\w+):", result.stdout + result.stderr, re.MULTILINE))
    assert {"teacher", "data", "scale", "evaldata", "restore", "evaluate", "evaluate_restored", "report"} <= rules
    assert len(submitted) >= 10  # every job went through sbatch
    reference = write_config(tmp_path / "reference.yaml", {**reduced, "outdir": str(local_dir / "results")})
    local_csv = tmp_path / "local-summary.csv"
    made = ard("report", "--config", reference, "--out-csv", local_csv, "--out-md", tmp_path / "local-summary.md")
    assert made.returncode == 0, made.stderr[-3000:]
    key = ["variant", "row_type", "seed", "suite", "task", "metric", "context_length"]
    slurm = pd.read_csv(tmp_path / "results" / "summary.csv").sort_values(key).reset_index(drop=True)
    local = pd.read_csv(local_csv).sort_values(key).reset_index(drop=True)
    assert len(slurm) and slurm[key].equals(local[key])
    pd.testing.assert_series_equal(slurm.value, local.value, rtol=1e-6)


def test_real_model_config_asks_slurm_for_gpus(tmp_path):
    result = snakemake(tmp_path, REPO / "config" / "llama2-7b-32k.yaml", "-n", "--profile", str(PROFILE),
                       "--slurm-no-account")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    out = result.stdout + result.stderr
    jobs = re.split(r"\n(?=(?:localrule|rule) \w+:)", out)
    restores = [j for j in jobs if j.startswith("rule restore:")]
    evaluations = [j for j in jobs if j.startswith(("rule evaluate:", "rule evaluate_restored:"))]
    gpus = {j.split("restore=")[1].split(",")[0].split("\n")[0]: int(re.search(r"gpu=(\d+)", j).group(1)) for j in restores}
    assert gpus["linearard"] == 2 and gpus["cpt"] == 1  # LinearARD on two GPUs, as the paper trains
    assert evaluations and all("gpu=1" in j for j in evaluations)
    assert "gpu=0" in next(j for j in jobs if j.startswith("rule data:"))
    assert yaml.safe_load((PROFILE / "config.yaml").read_text())["executor"] == "slurm"
