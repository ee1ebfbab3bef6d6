"""`ard evaldata`: seeded, byte-identical data; prompts that fit their context; clear errors on bad suites."""
import json

import pytest
import yaml

from ard import config as ard_config
from ard import evaldata
from ard.evaluation import suites as eval_suites
from ard.evaluation.corpus import Corpus
from ard.evaluation.suites import load_suite, task_config, task_manager
from ard.evaldata import MANIFEST
from eval_fixtures import NATIVE, build_workspace, write_config

LOCAL_SUITES = sorted(
    p.stem for p in eval_suites.SUITES_DIR.glob("*.yaml") if yaml.safe_load(p.read_text()).get("source") == "local"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("evaldata") / "ws")


def _generate(config, data, suite, out):
    assert evaldata.main(list(map(str, ["--config", config, "--suite", suite, "--data", data, "--out", out]))) == 0
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.jsonl"))}


@pytest.mark.parametrize("suite", LOCAL_SUITES)
def test_same_seed_same_bytes_other_seed_other_data(workspace, tmp_path, suite):
    data, _, config = workspace
    first = _generate(config, data, suite, tmp_path / "a")
    assert first and first == _generate(config, data, suite, tmp_path / "b")
    reseeded = tmp_path / "seed1.yaml"
    reseeded.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "seed": 1}))
    other = _generate(reseeded, data, suite, tmp_path / "c")
    assert other.keys() == first.keys() and other != first


@pytest.mark.parametrize("suite", LOCAL_SUITES)
def test_every_prompt_fits_its_context_and_holds_its_answer(workspace, tmp_path, suite):
    data, _, config = workspace
    out = tmp_path / suite
    _generate(config, data, suite, out)
    manifest = json.loads((out / MANIFEST).read_text())
    corpus = Corpus(data)
    spec = load_suite(suite, ard_config.load(config), NATIVE)
    manager = task_manager(spec)
    for task, files in manifest["files"].items():
        cfg = task_config(manager, task)
        for key, entry in files.items():
            assert "skipped" not in entry, entry  # every task fits at the native length and above
            context = NATIVE if key == "test" else int(key)
            rows = [json.loads(line) for line in (out / entry["path"]).read_text().splitlines()]
            assert len(rows) == entry["n"] == 3
            for row in rows:
                if cfg["output_type"] == "generate_until":
                    assert corpus.ntok(row["input"]) <= context - cfg["generation_kwargs"]["max_gen_toks"]
                    if cfg["metadata"]["generator"] in ("niah", "variable_tracking"):
                        assert all(answer in row["input"] for answer in row["outputs"])
                elif "choices" in row:
                    assert all(corpus.ntok(row["context"] + c) <= context for c in row["choices"])
                    assert 0 <= row["label"] < len(row["choices"])
                elif "text" in row:
                    assert corpus.ntok(row["text"]) <= context
                else:
                    target = row.get("target", row.get("continuation"))
                    assert corpus.ntok(row["context"] + target) <= context + 1


def test_sample_i_is_the_same_question_at_every_length(workspace, tmp_path):
    data, _, config = workspace
    out = tmp_path / "ruler"
    _generate(config, data, "ruler", out)
    answers = {
        length: [json.loads(line)["outputs"] for line in (out / f"ard_niah_single_2/{length}.jsonl").open()]
        for length in (NATIVE, 2 * NATIVE, 4 * NATIVE)
    }
    assert answers[NATIVE] == answers[2 * NATIVE] == answers[4 * NATIVE]


def _run_error(capsys, argv):
    assert evaldata.main(list(map(str, argv))) == 1
    return capsys.readouterr().err


def test_unknown_task_in_a_suite_is_a_clear_error(workspace, tmp_path, monkeypatch, capsys):
    data, _, config = workspace
    monkeypatch.setattr(eval_suites, "SUITES_DIR", tmp_path)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"source": "local", "limit": 2, "tasks": ["ard_no_such_task"]}))
    err = _run_error(capsys, ["--config", str(config), "--suite", "bad", "--data", str(data), "--out", str(tmp_path / "o")])
    assert "unknown task 'ard_no_such_task'" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("values", [[0], [1.5], ["2"], []])
def test_bad_lengths_in_a_suite_are_clear_errors(workspace, tmp_path, monkeypatch, capsys, values):
    data, _, config = workspace
    monkeypatch.setattr(eval_suites, "SUITES_DIR", tmp_path)
    suite = {"source": "local", "limit": 2, "lengths": {"unit": "native", "values": values}, "tasks": ["ard_niah_single_1"]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(suite))
    err = _run_error(capsys, ["--config", str(config), "--suite", "bad", "--data", str(data), "--out", str(tmp_path / "o")])
    assert "lengths" in err and not (tmp_path / "o").exists()


def test_bad_length_override_in_the_config_is_a_config_error(workspace, tmp_path, capsys):
    data, _, _ = workspace
    config = write_config(
        tmp_path / "c.yaml", tmp_path / "r", overrides={"ruler": {"lengths": {"unit": "native", "values": [0, 2]}}}
    )
    err = _run_error(capsys, ["--config", str(config), "--suite", "ruler", "--data", str(data), "--out", str(tmp_path / "o")])
    assert "evaluation.overrides.ruler.lengths.values" in err


def test_unknown_suite_and_missing_corpus_are_clear_errors(workspace, tmp_path, capsys):
    data, _, config = workspace
    err = _run_error(capsys, ["--config", str(config), "--suite", "nope", "--data", str(data), "--out", str(tmp_path / "o")])
    assert "no suite named 'nope'" in err
    err = _run_error(capsys, ["--config", str(config), "--suite", "short", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "meta.json (run the data stage first)" in err and not (tmp_path / "o").exists()


def test_a_length_too_short_for_a_task_is_recorded_as_skipped(workspace, tmp_path, monkeypatch):
    from ard import evaluate

    data, _, _ = workspace
    monkeypatch.setattr(eval_suites, "SUITES_DIR", tmp_path)
    suite = {"source": "local", "limit": 2, "lengths": {"unit": "tokens", "values": [40, 512]},
             "tasks": ["ard_niah_single_2", "ard_cwe"]}
    (tmp_path / "tight.yaml").write_text(yaml.safe_dump(suite))
    config = write_config(tmp_path / "c.yaml", tmp_path / "r")
    out = tmp_path / "out"
    _generate(config, data, "tight", out)
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert "too few" in files["ard_cwe"]["40"]["skipped"] and not (out / "ard_cwe/40.jsonl").exists()
    assert files["ard_cwe"]["512"]["n"] == 2
    spec = load_suite("tight", ard_config.load(config), NATIVE)
    runs, skipped = evaluate.local_runs(spec, task_manager(spec), out)
    assert {(s["task"], s["context_length"]) for s in skipped} >= {("ard_cwe", 40)}
    assert [run.names for run in runs if run.context_length == 512] == [["ard_niah_single_2", "ard_cwe"]]


def test_a_task_subset_override_generates_only_those_tasks(workspace, tmp_path, capsys):
    data, _, _ = workspace
    kept = ["ard_niah_single_2", "ard_niah_single_1"]
    config = write_config(tmp_path / "c.yaml", tmp_path / "r", overrides={"ruler": {"tasks": kept}})
    spec = load_suite("ruler", ard_config.load(config), NATIVE)
    assert [task.name for task in spec.tasks] == kept
    generated = _generate(config, data, "ruler", tmp_path / "o")
    assert {name for name in kept for path in generated if name in str(path)} == set(kept)
    assert all(any(name in str(path) for name in kept) for path in generated)

    config = write_config(tmp_path / "bad.yaml", tmp_path / "r", overrides={"ruler": {"tasks": ["ard_lambada"]}})
    err = _run_error(capsys, ["--config", str(config), "--suite", "ruler", "--data", str(data), "--out", str(tmp_path / "x")])
    assert "evaluation.overrides.ruler.tasks: 'ard_lambada' is not a task of this suite" in err
    assert not (tmp_path / "x").exists()
