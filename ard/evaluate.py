"""`ard evaluate`: score one model directory on one suite through lm_eval.simple_evaluate.

Local suites run once per context length L, with HFLM's max_length = L and each task reading that
length's jsonl, so a model is always run at the length asked, beyond its max_position_embeddings too
(rows say so in beyond_max_position). Short-text suites run once with max_length = the native context,
the same window for every variant. The output JSON holds every lm-eval result dict (keyed by the context
length, or "short"), task config hashes, and tidy `rows` for the report stage, including one per-length
"<suite>_avg" row per suite computed here from the task rows (never lm-eval's group aggregate).
"""
import contextlib
import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from ard import config as ard_config
from ard.evaluation.staging import check_staged, offline
from ard.evaluation.suites import check_tasks, load_suite, task_config, task_manager
from ard.evaldata import MANIFEST, length_key
from ard.io import read_json, write_json
from ard.runtime import setup, stage_main, stage_parser

AVERAGE_METRIC = "score"


@dataclass
class Run:
    """One simple_evaluate call: tasks (names or config dicts) at one HFLM max_length."""

    key: str
    context_length: int | None
    max_length: int
    tasks: list
    names: list = field(default_factory=list)
    num_fewshot: int | None = None
    limit: int | None = None
    data_sha: dict = field(default_factory=dict)


def local_runs(suite, manager, evaldata_dir):
    """One run per length over the data files of `ard evaldata`; missing or stale data is an error."""
    evaldata_dir = Path(evaldata_dir).resolve()
    manifest_path = evaldata_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"missing {manifest_path}: run `ard evaldata --suite {suite.name}` first")
    manifest = read_json(manifest_path)
    wanted = list(suite.lengths) if suite.lengths else None
    if manifest["suite"] != suite.name or manifest["lengths"] != wanted:
        raise ValueError(
            f"{evaldata_dir} holds suite {manifest['suite']} at lengths {manifest['lengths']}, but suite"
            f" {suite.name} asks for {wanted}: rerun `ard evaldata`"
        )
    runs, skipped = [], []
    for length in suite.lengths or [None]:
        run = Run(length_key(length) if length else "short", length, length or suite.native_context, [])
        for task in suite.tasks:
            entry = manifest["files"].get(task.name, {}).get(length_key(length))
            if entry and "skipped" in entry:
                skipped.append({"task": task.name, "context_length": length, "reason": entry["skipped"]})
                continue
            path = evaldata_dir / entry["path"] if entry else evaldata_dir / f"{task.name}/{length_key(length)}.jsonl"
            if not entry or not path.is_file():
                raise FileNotFoundError(f"missing data file {path}: rerun `ard evaldata --suite {suite.name}`")
            cfg = task_config(manager, task.name, resolve_functions=True)
            cfg["dataset_kwargs"] = {"data_files": {"test": str(path)}}
            cfg["num_fewshot"] = task.num_fewshot
            run.tasks.append(cfg)
            run.names.append(task.name)
            run.data_sha[task.name] = entry["sha256"]
        if run.tasks:
            runs.append(run)
    return runs, skipped


def lm_eval_runs(suite):
    """lm-eval's own tasks: one run per (length, few-shot, limit); with lengths_as, one for all lengths."""
    combos = {}
    for task in suite.tasks:
        combos.setdefault((task.num_fewshot, task.limit), []).append(task.name)
    lengths = [None] if suite.lengths is None or suite.lengths_as else list(suite.lengths)
    runs = []
    for length in lengths:
        for (shots, limit), names in combos.items():
            key = "_".join([str(length or "all"), f"fewshot{shots}"] + ([f"limit{limit}"] if limit else []))
            max_length = length or (max(suite.lengths) if suite.lengths else suite.native_context)
            runs.append(Run(key, length, max_length, names, names, shots, limit))
    return runs


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _primary_first(out, task, key):
    """Sort key putting the task config's first metric_list entry (its primary metric) first."""
    metric_list = out.get("configs", {}).get(task, {}).get("metric_list") or [{}]
    return key.partition(",")[0] != metric_list[0].get("metric")


def _n_samples(out, task):
    if task in out.get("n-samples", {}):
        return int(out["n-samples"][task]["effective"])
    return sum(_n_samples(out, child) for child in out.get("group_subtasks", {}).get(task, []))


def rows_from_results(suite, runs, max_position_embeddings):
    """Tidy rows from lm-eval result dicts.

    runs: [(context_length or None, lm-eval results dict, the suite's task names in it)]; other
    entries of the results (subtasks of a group, say) are left out. lm-eval RULER tasks name their metrics by
    length ("4096"); those become rows with that context length and metric "score" (its negative
    placeholder for lengths not run is dropped). Per context length, a "<suite>_avg" row averages the
    primary metric (the first of the task's metric_list) of every task where it is higher-is-better.
    """
    rows = []
    for context_length, out, tasks in runs:
        for task in tasks:
            entry = out["results"].get(task)
            if entry is None:
                raise ValueError(f"lm-eval returned no result for task {task}")
            better = out.get("higher_is_better", {}).get(task, {})
            for key, value in sorted(entry.items(), key=lambda item: _primary_first(out, task, item[0])):
                metric, _, filter_name = key.partition(",")
                if not filter_name or "_stderr" in metric or _number(value) is None:
                    continue
                length = context_length
                if metric.isdigit():
                    if value < 0:
                        continue
                    length, name = int(metric), AVERAGE_METRIC
                else:
                    name = metric
                rows.append(
                    {
                        "suite": suite,
                        "task": task,
                        "metric": name,
                        "context_length": length,
                        "value": float(value),
                        "stderr": _number(entry.get(f"{metric}_stderr,{filter_name}")),
                        "n_samples": _n_samples(out, task),
                        "higher_is_better": bool(better.get(metric, True)),
                        "beyond_max_position": length is not None and length > max_position_embeddings,
                    }
                )
    return rows + average_rows(suite, rows)


def average_rows(suite, rows):
    primary = {}
    for row in rows:  # the first metric a task reports at a length is its primary one
        primary.setdefault((row["context_length"], row["task"]), row)
    by_length = {}
    for (length, _), row in primary.items():
        if row["higher_is_better"]:
            by_length.setdefault(length, []).append(row)
    return [
        {
            "suite": suite,
            "task": f"{suite}_avg",
            "metric": AVERAGE_METRIC,
            "context_length": length,
            "value": sum(r["value"] for r in members) / len(members),
            "stderr": None,
            "n_samples": sum(r["n_samples"] for r in members),
            "higher_is_better": True,
            "beyond_max_position": members[0]["beyond_max_position"],
        }
        for length, members in by_length.items()
    ]


def configs_sha(results, tasks):
    """Per task: sha256 of the task config(s) lm-eval ran (data paths left out; data has its own sha)."""

    def leaves(out, name):
        children = out.get("group_subtasks", {}).get(name)
        return [leaf for child in children for leaf in leaves(out, child)] if children else [name]

    shas = {}
    for task in tasks:
        configs = []
        for out in results.values():
            for leaf in leaves(out, task):
                cfg = dict(out["configs"].get(leaf, {}))
                cfg.pop("dataset_kwargs", None)
                configs.append(cfg)
        text = json.dumps(configs, sort_keys=True, default=str)
        shas[task] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return shas


def _dtype(name, device):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


@stage_main
def main(argv=None):
    parser = stage_parser("ard evaluate", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--suite", required=True, help="suite name: eval_configs/suites/<suite>.yaml")
    parser.add_argument("--model", required=True, help="Hugging Face model directory (with tokenizer files)")
    parser.add_argument("--evaldata", required=True, help="the suite's `ard evaldata` output folder")
    parser.add_argument("--out", required=True, help="result JSON, written atomically")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the config's threads)")
    args = parser.parse_args(argv)

    # Nothing may come from the hub: local suites read jsonl files, lm-eval suites the staged cache.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    config = ard_config.load(args.config)
    if args.threads:
        config["threads"] = args.threads
    device = setup(config)
    evaluation = config["evaluation"]
    suite = load_suite(args.suite, config)
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory (no config.json)")
    # RULER sizes its prompts with the model's tokenizer, named in the task metadata.
    metadata = {suite.lengths_as: list(suite.lengths), "pretrained": str(model_dir)} if suite.lengths_as else None
    manager = task_manager(suite, metadata)
    check_tasks(suite, manager)
    if suite.source == "local":
        runs, skipped = local_runs(suite, manager, args.evaldata)
        data_source = contextlib.nullcontext
    else:
        runs, skipped = lm_eval_runs(suite), []
        check_staged(evaluation["staged_data"], manager, suite.task_names)
        data_source = functools.partial(offline, evaluation["staged_data"])

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=_dtype(evaluation["dtype"], device)).to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_position = model.config.max_position_embeddings
    results, timings = {}, {}
    for run in runs:
        started = time.perf_counter()
        lm = HFLM(
            pretrained=model,
            tokenizer=tokenizer,
            batch_size=evaluation["batch_size"],
            max_length=run.max_length,
            device=str(device),
        )
        with data_source():
            out = lm_eval.simple_evaluate(
                model=lm,
                tasks=run.tasks,
                num_fewshot=run.num_fewshot,
                limit=run.limit,
                task_manager=manager,
                bootstrap_iters=evaluation["bootstrap_iters"],
                log_samples=False,
                random_seed=config["seed"],
                numpy_random_seed=config["seed"],
                torch_random_seed=config["seed"],
                fewshot_random_seed=config["seed"],
            )
        results[run.key] = json.loads(json.dumps(out, default=str))
        timings[run.key] = round(time.perf_counter() - started, 2)
        print(f"{suite.name} {run.key}: {timings[run.key]} s", flush=True)

    write_json(
        args.out,
        {
            "suite": suite.name,
            "model": str(model_dir),
            "lm_eval_version": version("lm_eval"),
            "native_context": suite.native_context,
            "max_position_embeddings": max_position,
            "results": results,
            "configs_sha": configs_sha(results, suite.task_names),
            "data_sha": {run.key: run.data_sha for run in runs if run.data_sha},
            "seconds": timings,
            "skipped": skipped,
            "rows": rows_from_results(
                suite.name, [(run.context_length, results[run.key], run.names) for run in runs], max_position
            ),
        },
    )
