"""`ard evaluate`: score one model directory on one suite through lm_eval.simple_evaluate.

Local suites run once per context length L, with HFLM's max_length = L and each task reading that
length's jsonl, so a model is always run at the length asked, beyond its max_position_embeddings too
(rows say so in beyond_max_position). Short-text suites run once with max_length = the suite's window
(by default the native context), the same for every variant. The output JSON holds every lm-eval result
dict (keyed by the context length, or "short"), the per-sample scores (`samples`, same keys), task config
hashes, and tidy `rows` for the report stage, including one per-length "<suite>_avg" row per suite
computed from the task rows (never lm-eval's group aggregate). Where lm-eval gives no standard error
(bits per byte, perplexities), a jackknife over the samples fills it; `stderr_method` says which.
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
from ard.evaluation.rows import rows_from_results
from ard.evaluation.samples import compact, fill_missing_stderr
from ard.evaluation.suites import check_tasks, load_suite, task_config, task_manager
from ard.evaldata import length_key, read_manifest
from ard.io import read_json, write_json
from ard.runtime import setup, stage_main, stage_parser

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
    manifest = read_manifest(evaldata_dir, suite.name)
    wanted = list(suite.lengths) if suite.lengths else None
    window = None if suite.lengths else suite.window
    if manifest["suite"] != suite.name or manifest["lengths"] != wanted or manifest.get("window") != window:
        raise ValueError(
            f"{evaldata_dir} holds suite {manifest['suite']} at lengths {manifest['lengths']}, window"
            f" {manifest.get('window')}, but suite {suite.name} asks for {wanted}, window {window}: rerun `ard evaldata`"
        )
    runs, skipped = [], []
    for length in suite.lengths or [None]:
        run = Run(length_key(length) if length else "short", length, length or suite.window, [])
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
            max_length = length or (max(suite.lengths) if suite.lengths else suite.window)
            runs.append(Run(key, length, max_length, names, names, shots, limit))
    return runs


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


def batch_size_at(evaluation, length):
    """`batch_size`, capped so that one batch holds at most `batch_tokens` tokens (when set)."""
    if not evaluation["batch_tokens"]:
        return evaluation["batch_size"]
    return max(1, min(evaluation["batch_size"], evaluation["batch_tokens"] // length))


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
    suite = load_suite(args.suite, config, read_manifest(args.evaldata, args.suite)["native_context"])
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
    results, samples, timings = {}, {}, {}
    for run in runs:
        started = time.perf_counter()
        lm = HFLM(
            pretrained=model,
            tokenizer=tokenizer,
            batch_size=batch_size_at(evaluation, run.max_length),
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
                log_samples=True,
                random_seed=config["seed"],
                numpy_random_seed=config["seed"],
                torch_random_seed=config["seed"],
                fewshot_random_seed=config["seed"],
            )
        samples[run.key] = compact(out.pop("samples"))
        out["stderr_method"] = fill_missing_stderr(out, samples[run.key])
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
            "window": None if suite.lengths else suite.window,
            "max_position_embeddings": max_position,
            "results": results,
            "configs_sha": configs_sha(results, suite.task_names),
            "data_sha": {run.key: run.data_sha for run in runs if run.data_sha},
            "seconds": timings,
            "skipped": skipped,
            "samples": samples,
            "rows": rows_from_results(
                suite.name, [(run.context_length, results[run.key], run.names) for run in runs], max_position
            ),
        },
    )
