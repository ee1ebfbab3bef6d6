"""`ard evaluate` on a random tiny model: result JSON and rows; bad input fails before any model loads;
the plain lm-eval CLI runs a local task."""
import json
import math
import shutil

import pytest
import transformers

from ard import config as ard_config
from ard import evaldata, evaluate
from ard.evaluation.suites import load_suite
from eval_fixtures import NATIVE, build_workspace
from helpers import lm_eval_cli

SUITES = ("short", "ruler", "longbench", "ppl")


def _argv(*args):
    return [str(a) for a in args]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    data, model, config = build_workspace(tmp_path_factory.mktemp("evaluate") / "ws")
    results = config.parent / "results"
    outputs = {}
    for suite in SUITES:
        out = results / "evaldata" / suite
        assert evaldata.main(_argv("--config", config, "--suite", suite, "--data", data, "--out", out)) == 0
        outputs[suite] = results / "eval" / f"{suite}.json"
        argv = _argv("--config", config, "--suite", suite, "--model", model, "--evaldata", out, "--out", outputs[suite])
        assert evaluate.main(argv) == 0
    return data, model, config, {suite: json.loads(path.read_text()) for suite, path in outputs.items()}


def test_short_suite_result(evaluated):
    *_, results = evaluated
    result = results["short"]
    assert result["suite"] == "short" and result["lm_eval_version"].startswith("0.4")
    tasks = {"ard_ppl", "ard_lambada", "ard_hellaswag", "ard_wordswap"}
    assert set(result["configs_sha"]) == tasks
    rows = result["rows"]
    assert {r["task"] for r in rows} == tasks | {"short_avg"}
    assert all(r["context_length"] is None and not r["beyond_max_position"] for r in rows)
    assert all(math.isfinite(r["value"]) and r["n_samples"] >= 3 for r in rows)
    (bpb,) = [r["value"] for r in rows if r["metric"] == "bits_per_byte"]
    assert 1 < bpb < 16  # a random model: near log2(vocab) bits per token, a few bytes per token


@pytest.mark.parametrize("suite", ["ruler", "longbench", "ppl"])
def test_long_suites_score_every_task_at_every_length(evaluated, suite):
    *_, config, results = evaluated
    spec = load_suite(suite, ard_config.load(config), NATIVE)
    result = results[suite]
    assert set(result["results"]) == {str(length) for length in spec.lengths} and not result["skipped"]
    rows = result["rows"]
    for length in spec.lengths:
        assert {r["task"] for r in rows if r["context_length"] == length} >= set(spec.task_names)
    for row in rows:
        assert row["beyond_max_position"] == (row["context_length"] > NATIVE)
        assert math.isfinite(row["value"]) and row["n_samples"] >= 3
        if row["higher_is_better"]:
            assert 0 <= row["value"] <= 1
    averages = {r["context_length"] for r in rows if r["task"] == f"{suite}_avg"}
    assert averages == (set(spec.lengths) if suite != "ppl" else set())  # perplexity has no higher-is-better task


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def test_missing_data_file_fails_before_the_model_loads(evaluated, tmp_path, capsys, no_model_loading):
    _, model, config, _ = evaluated
    broken = tmp_path / "ruler"
    shutil.copytree(config.parent / "results" / "evaldata" / "ruler", broken)
    (broken / f"ard_niah_single_2/{2 * NATIVE}.jsonl").unlink()
    argv = _argv("--config", config, "--suite", "ruler", "--model", model, "--evaldata", broken, "--out", tmp_path / "r.json")
    assert evaluate.main(argv) == 1
    err = capsys.readouterr().err
    assert "missing data file" in err and f"ard_niah_single_2/{2 * NATIVE}.jsonl" in err
    assert not (tmp_path / "r.json").exists()


def test_stale_eval_data_fails_before_the_model_loads(evaluated, tmp_path, capsys, no_model_loading):
    _, model, config, _ = evaluated
    changed = tmp_path / "c.yaml"
    changed.write_text(config.read_text().replace("limit: 3", "limit: 3\n  overrides: {ruler: {lengths: {unit: native, values: [1, 8]}}}"))
    evaldata_dir = config.parent / "results" / "evaldata" / "ruler"
    argv = _argv("--config", changed, "--suite", "ruler", "--model", model, "--evaldata", evaldata_dir, "--out", tmp_path / "r.json")
    assert evaluate.main(argv) == 1
    assert "rerun `ard evaldata`" in capsys.readouterr().err


@pytest.mark.slow
def test_plain_lm_eval_cli_runs_a_local_task(evaluated, tmp_path):
    """The task YAMLs are plain lm-eval: relative data paths resolve against the current folder, so this
    runs from the repo root after the embedded default (or from any folder holding results/evaldata)."""
    _, model, config, _ = evaluated
    shutil.copytree(config.parent / "results" / "evaldata", tmp_path / "results" / "evaldata")
    result = lm_eval_cli(tmp_path, model, "ard_niah_single_2", max_length=4 * NATIVE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ard_niah_single_2" in result.stdout and "string_match_all" in result.stdout
    (saved,) = (tmp_path / "lm_eval_out").rglob("results_*.json")
    assert json.loads(saved.read_text())["n-samples"]["ard_niah_single_2"]["effective"] == 9  # 3 per length


@pytest.mark.parametrize(
    "batch_size, batch_tokens, length, expected",
    [(8, None, 32768, 8), (8, 65536, 2048, 8), (8, 65536, 16384, 4), (8, 65536, 32768, 2), (8, 16384, 32768, 1)],
)
def test_batch_tokens_cap_the_batch_at_long_lengths(batch_size, batch_tokens, length, expected):
    assert evaluate.batch_size_at({"batch_size": batch_size, "batch_tokens": batch_tokens}, length) == expected
