"""Fixtures several test modules share."""
import pytest
import yaml

from helpers import REPO, snakemake, write_config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The tiny config (three restoration seeds) run locally to its summary: (workdir, configfile, config)."""
    workdir = tmp_path_factory.mktemp("workflow")
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["outdir"] = str(workdir / "results")
    configfile = write_config(workdir / "tiny.yaml", config)
    result = snakemake(workdir, configfile)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, configfile, config
