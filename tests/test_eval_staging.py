"""Real-model suites: every task exists in lm-eval's registry; staged data makes lm-eval's tasks run offline."""
import json
import os
import shutil

import datasets
import pytest
import transformers
import yaml

from ard import evaldata, evaluate, stage_eval_data
from ard.evaluation import staging as eval_staging
from ard.evaluation import suites as eval_suites
from ard.evaluation.staging import requirements
from eval_fixtures import build_workspace, write_config

STANDIN_TASKS = eval_suites.REPO_ROOT / "tests" / "eval_fixtures" / "standin_tasks"
REAL_SUITES = sorted(
    p.stem for p in eval_suites.SUITES_DIR.glob("*.yaml") if yaml.safe_load(p.read_text()).get("source") == "lm_eval"
)


@pytest.fixture(scope="module")
def full_index():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(eval_suites.TASKS_DIR))


@pytest.mark.slow
def test_every_task_of_the_real_suites_is_in_lm_evals_registry(full_index):
    assert {"real_short", "real_ruler", "real_longbench"} <= set(REAL_SUITES)
    for suite in REAL_SUITES:
        for entry in yaml.safe_load((eval_suites.SUITES_DIR / f"{suite}.yaml").read_text())["tasks"]:
            name = entry if isinstance(entry, str) else entry["task"]
            assert name in full_index.all_tasks, f"{suite}: {name} is not an lm-eval task"


@pytest.mark.slow
def test_staging_knows_what_rulers_and_mmlus_tasks_fetch(full_index):
    datasets, urls, nltk = requirements(full_index, ["niah_single_2", "ruler_qa_squad", "mmlu", "hellaswag"])
    assert ("baber/paul_graham_essays", None) in datasets and ("Rowan/hellaswag", None) in datasets
    assert len([d for d in datasets if d[0] == "cais/mmlu"]) == 57
    assert any(url.endswith("dev-v2.0.json") for url in urls) and nltk


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """A suite of one hub-style task, lm-eval's index limited to it, and a mirror holding its data."""
    from lm_eval.tasks import TaskManager

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "standin.yaml").write_text(yaml.safe_dump({"source": "lm_eval", "limit": 4, "tasks": ["standin_mc"]}))
    monkeypatch.setattr(eval_suites, "SUITES_DIR", suites)
    index = lambda suite, metadata=None: TaskManager(include_path=str(STANDIN_TASKS), include_defaults=False)  # noqa: E731
    monkeypatch.setattr(stage_eval_data, "task_manager", index)
    monkeypatch.setattr(evaluate, "task_manager", index)
    monkeypatch.setattr(evaldata, "task_manager", index)
    mirror = tmp_path / "mirror" / "datasets" / "standin" / "tiny_mc" / "default"
    mirror.mkdir(parents=True)
    rows = [{"context": f"Line {i}:", "choices": [" one", " two", " three"], "label": i % 3} for i in range(6)]
    (mirror / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_staged_hub_task_runs_offline_after_the_mirror_is_gone(standin, tmp_path_factory):
    data, model, _ = build_workspace(tmp_path_factory.mktemp("staging") / "ws")
    staged = standin / "staged"
    config = write_config(standin / "c.yaml", standin / "results", suites=["standin"], staged_data=str(staged))
    argv = ["--config", str(config), "--out", str(staged), "--mirror", str(standin / "mirror")]
    assert stage_eval_data.main(argv) == 0
    manifest = json.loads((staged / eval_staging.MANIFEST).read_text())
    assert manifest["datasets"] == {"standin/tiny_mc|": ["test"]}
    assert (staged / "datasets/standin/tiny_mc/default/test.parquet").is_file()
    shutil.rmtree(standin / "mirror")
    # evaldata writes only a manifest for an lm-eval suite: the native context its lengths are read in
    assert evaldata.main(["--config", str(config), "--suite", "standin", "--data", str(data), "--out", str(standin / "ed")]) == 0
    out = standin / "result.json"
    argv = ["--config", str(config), "--suite", "standin", "--model", str(model), "--evaldata", str(standin / "ed"), "--out", str(out)]
    assert evaluate.main(argv) == 0
    (row, average) = json.loads(out.read_text())["rows"]
    assert row["task"] == "standin_mc" and row["metric"] == "acc" and row["n_samples"] == 3  # evaluation.limit caps the suite's 4
    assert row["context_length"] is None and average["task"] == "standin_avg"


def test_unstaged_data_is_an_error_before_the_model_loads(standin, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "manifest.json").write_text(json.dumps({"suite": "standin", "native_context": 256}))
    for staged, message in [(None, "evaluation.staged_data is not set"), (tmp_path / "nowhere", "ard stage-eval-data")]:
        config = write_config(tmp_path / "c.yaml", tmp_path / "r", suites=["standin"], staged_data=staged and str(staged))
        argv = ["--config", str(config), "--suite", "standin", "--model", str(model), "--evaldata", str(tmp_path), "--out", str(tmp_path / "o.json")]
        assert evaluate.main(argv) == 1
        assert message in capsys.readouterr().err


def test_offline_answers_rulers_json_downloads_and_nltk_from_the_staged_folder(tmp_path):
    from lm_eval.tasks.ruler import qa_utils

    url = "https://example.org/data/dev.json"
    (tmp_path / "urls").mkdir()
    (tmp_path / "urls" / "dev.json").write_text('{"data": []}')
    manifest = {"datasets": {}, "urls": {url: "urls/dev.json"}, "nltk_data": "nltk_data"}
    (tmp_path / eval_staging.MANIFEST).write_text(json.dumps(manifest))
    original = qa_utils.download_json
    with eval_staging.offline(tmp_path):
        assert qa_utils.download_json(url) == {"data": []}
        assert os.environ["NLTK_DATA"] == str(tmp_path / "nltk_data")
        with pytest.raises(FileNotFoundError, match="is not staged"):
            datasets.load_dataset("someone/unstaged")
    assert qa_utils.download_json is original
