"""Bad input stops with a one-line error naming the problem, a non-zero exit, and no outputs left behind."""
import pytest

from helpers import ard, snakemake, write_config


def _base(outdir, **overrides):
    config = {"experiment": "bad", "outdir": str(outdir), "scalings": [{"type": "linear", "factor": 4}],
              "restores": ["none", "linearard"]}
    config.update(overrides)
    return config


def _last_line(text):
    return [line for line in text.strip().splitlines() if line.strip()][-1]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"teacher": {"architecture": {"hiden_size": 64}}}, "config error at teacher.architecture: unknown key 'hiden_size'"),
        ({"scalings": [{"type": "linear", "factor": 1}]}, "config error at scalings.0.factor: 1 is less than or equal to the minimum of 1"),
        ({"scalings": [{"type": "yarn", "factor": 0.5}]}, "config error at scalings.0.factor"),
        ({"teacher": {"source": "path", "path": "/no/such/teacher"}}, "config error at teacher.path: no such directory: /no/such/teacher"),
        ({"restores": ["none", "linearadr"]}, "config error at restores.1: 'linearadr' is not one of"),
        ({"restore": {"cpt-10x": {"method": "cptt"}}}, "config error at restore.cpt-10x.method: 'cptt' is not one of"),
    ],
    ids=["unknown-key", "factor-1", "factor-below-1", "missing-teacher", "unknown-restore", "variant-method"],
)
def test_bad_config_stops_before_any_job(tmp_path, overrides, expected):
    outdir = tmp_path / "results"
    configfile = write_config(tmp_path / "bad.yaml", _base(outdir, **overrides))
    result = snakemake(tmp_path / "work", configfile)
    assert result.returncode != 0
    assert _last_line(result.stderr + result.stdout).startswith(expected)
    assert not outdir.exists()
    # The stage CLIs validate the same way.
    cli = ard("data", "--config", configfile, "--out", outdir / "data")
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines()[-1] == f"error: {_last_line(result.stderr + result.stdout)}"
    assert not outdir.exists()


def test_corpus_shorter_than_one_block(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("Too short to hold one training block.\n\nA second paragraph.")
    outdir = tmp_path / "results"
    configfile = write_config(tmp_path / "short.yaml", _base(
        outdir, data={"corpus": {"source": "text_files", "text_files": [str(corpus)]}, "tokenizer": {"vocab_size": 300}}))
    result = ard("data", "--config", configfile, "--out", outdir / "data")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: corpus too short: the train split has") and "fewer than one training block (257 tokens" in line
    assert not (outdir / "data").exists()
    # Through Snakemake the data job fails and leaves nothing behind either.
    workflow = snakemake(tmp_path / "work", configfile, str(outdir / "data"))
    assert workflow.returncode != 0
    assert not (outdir / "data").exists()
    log = (tmp_path / "work" / "logs" / "bad" / "data" / "data.log").read_text()
    assert _last_line(log).startswith("error: corpus too short")


@pytest.mark.parametrize(
    "override, expected",
    [
        ('scalings=[{"type": "linear", "factor": 0.5}]', "config error at scalings.0.factor: 0.5 is less than or equal to the minimum of 1"),
        ('scalings=[{"type": "lineer", "factor": 4}]', "config error at scalings.0.type: 'lineer' is not one of"),
        ("restore={linearard: {steps: many}}", "config error at restore.linearard.steps: 'many' is not of type 'integer'"),
    ],
    ids=["factor", "type", "steps"],
)
def test_nested_command_line_overrides_are_read_as_yaml(tmp_path, override, expected):
    """Snakemake hands nested --config values over as strings; the errors must name the real problem."""
    configfile = write_config(tmp_path / "c.yaml", _base(tmp_path / "results"))
    result = snakemake(tmp_path / "work", configfile, "-n", "--config", override)
    assert result.returncode != 0
    assert _last_line(result.stderr).startswith(expected)


def test_a_valid_nested_override_plans(tmp_path):
    configfile = write_config(tmp_path / "c.yaml", _base(tmp_path / "results"))
    result = snakemake(tmp_path / "work", configfile, "-n", "--config", 'scalings=[{"type": "yarn", "factor": 2.5}]')
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scaling=yarn-2.5x" in result.stdout + result.stderr
