"""The restore stage end to end on tiny models: every method and a named variant, outputs, export,
kill/resume, bad input."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaForCausalLM, PreTrainedTokenizerFast

from ard import config as ard_config
from ard import restore, restore_methods
from test_linearard import FACTOR, NATIVE, scaled, tiny_config

SCALING = "linear-4x"
# Small enough that every method runs in a few seconds on 2 cores.
FAST = {
    "linearard": {"steps": 3, "batch_size": 2},
    "cpt": {"steps": 2, "batch_size": 1},
    "longred": {"steps": 2, "batch_size": 1},
    "logits_kd": {"steps": 2, "batch_size": 2},
}


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Teacher, student and data dirs as the teacher / scale / data stages write them."""
    root = tmp_path_factory.mktemp("restore_inputs")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<|endoftext|>", "<unk>"])
    tokenizer.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", unk_token="<unk>")
    torch.manual_seed(0)
    teacher = LlamaForCausalLM(tiny_config(vocab=len(fast)))
    student = LlamaForCausalLM(scaled(teacher.config))
    student.load_state_dict(teacher.state_dict())
    for name, model in (("teacher", teacher), ("student", student)):
        model.save_pretrained(root / name)
        fast.save_pretrained(root / name)
    (root / "data" / "tokens").mkdir(parents=True)
    tokens = np.random.default_rng(0).integers(0, len(fast), 20_000).astype(np.int32)
    np.save(root / "data" / "tokens" / "train.npy", tokens)
    return root


def write_config(path, restore_section=None, **top):
    config = {"experiment": "t", "outdir": str(path / "results"), "device": "cpu", "threads": 2,
              "scalings": [{"type": "linear", "factor": FACTOR}], "restores": ["none", *FAST, "linearard+cpt"],
              "restore": restore_section or FAST, **top}
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path / "config.yaml"


def argv(inputs, config_path, method, tmp, **override):
    args = {"config": config_path, "method": method, "scaling": SCALING, "teacher": inputs / "teacher",
            "student": inputs / "student", "data": inputs / "data", "checkpoints": tmp / "ckpt" / method,
            "out": tmp / "out" / method, **override}
    return [item for key, value in args.items() for item in (f"--{key}", str(value))]


def run_method(inputs, tmp, method, restore_section=None, on_step=None):
    config = ard_config.load(write_config(tmp, restore_section))
    out, ckpt = tmp / "out" / method, tmp / "ckpt" / method
    student = restore.run(config, method, SCALING, inputs / "teacher", inputs / "student", inputs / "data", ckpt, out,
                          on_step=on_step)
    return out, ckpt, student


def read_log(out):
    with open(out / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def test_every_schema_method_is_runnable():
    config = ard_config.validate({"experiment": "t", "scalings": [{"type": "linear", "factor": 2}], "restores": ["none"]})
    for method in config["restore"]:
        for name, _ in restore_methods.stage_plan(config, method):
            assert callable(restore_methods.objective_class(name))


# tokens the student reads per step: LongReD reads two short batches and one long sequence
TOKENS_PER_STEP = {
    "linearard": 2 * NATIVE,
    "cpt": NATIVE * FACTOR,
    "longred": 2 * NATIVE + NATIVE * FACTOR,
    "logits_kd": 2 * NATIVE,
}


@pytest.mark.parametrize("method", [*FAST, "linearard+cpt"])
def test_each_method_trains_and_records_its_tokens(inputs, tmp_path, method):
    out, ckpt, _ = run_method(inputs, tmp_path, method)
    info = json.loads((out / "restore.json").read_text())
    rows = read_log(out)
    stages = ["cpt", "linearard"] if method == "linearard+cpt" else [method]
    assert info["stages"] == stages and info["method"] == info["base_method"] == method
    assert info["steps"] == len(rows) == sum(FAST[s]["steps"] for s in stages)
    assert info["train_tokens"] == int(rows[-1]["tokens"]) == sum(FAST[s]["steps"] * TOKENS_PER_STEP[s] for s in stages)
    assert info["wall_seconds"] > 0 and np.isfinite(info["final_loss"])
    assert info["native_context"] == NATIVE and info["target_context"] == NATIVE * FACTOR
    assert [r["step"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    for column in ("loss", "lr", "tokens", "tokens_per_s", "peak_memory_mb"):
        assert all(np.isfinite(float(r[column])) for r in rows), column
    parts = {"linearard": "loss_qq_L1", "cpt": "loss_lm", "longred": "loss_short_to_long", "logits_kd": "loss_kd"}
    assert all(parts[s] in rows[0] for s in stages)
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "model" / "config.json").is_file()
    assert not ckpt.exists()  # removed once the output is in place


def test_a_named_variant_trains_its_base_objective_with_its_own_section(inputs, tmp_path):
    section = {**FAST, "cpt-3": {"method": "cpt", "steps": 3}}  # batch_size 1 comes from cpt's section
    out, _, _ = run_method(inputs, tmp_path, "cpt-3", section)
    info = json.loads((out / "restore.json").read_text())
    assert info["method"] == "cpt-3" and info["base_method"] == "cpt" and info["stages"] == ["cpt"]
    assert info["steps"] == 3 and info["train_tokens"] == 3 * TOKENS_PER_STEP["cpt"]
    assert info["hyperparameters"]["stages"]["cpt"]["batch_size"] == 1
    rows = read_log(out)
    assert [r["stage"] for r in rows] == ["cpt"] * 3 and "loss_lm" in rows[0]


@pytest.fixture(scope="module")
def trained(inputs, tmp_path_factory):
    """A LinearARD run long and fast enough to move the weights visibly."""
    section = {**FAST, "linearard": {"steps": 12, "batch_size": 2, "lr": 0.01, "warmup_steps": 0}}
    out, _, student = run_method(inputs, tmp_path_factory.mktemp("trained"), "linearard", section)
    return out, student


def test_linearard_lowers_its_loss(trained):
    losses = [float(r["loss"]) for r in read_log(trained[0])]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_merged_model_loads_plainly_and_matches_the_peft_model(inputs, trained):
    out, student = trained
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["rope_parameters"]["rope_type"] == "linear" and config["rope_parameters"]["factor"] == FACTOR
    assert config["rope_parameters"]["rope_theta"] == 10000.0
    assert config["max_position_embeddings"] == NATIVE * FACTOR
    assert "ard_capture" not in (out / "model" / "config.json").read_text()
    assert (out / "model" / "tokenizer.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    base = AutoModelForCausalLM.from_pretrained(inputs / "student").eval()
    ids = torch.randint(0, merged.config.vocab_size, (2, 3 * NATIVE))
    with torch.no_grad():
        want = student.eval()(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        untouched = base(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, untouched, atol=1e-4)  # the adapter did something


@pytest.mark.slow
def test_merged_model_loads_in_a_fresh_process(trained):
    """No attention function of ours is registered in a fresh interpreter."""
    code = ("import sys, transformers; m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
            "print(m.config.rope_parameters['rope_type'], m.config.max_position_embeddings)")
    model_dir = str(trained[0] / "model")
    result = subprocess.run([sys.executable, "-c", code, model_dir], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["linear", str(int(NATIVE * FACTOR))]


class Killed(Exception):
    pass


def _kill_after(step):
    def hook(done):
        if done == step:
            raise Killed

    return hook


@pytest.mark.parametrize("method,section,kill_at,resume_at", [
    ("linearard", {**FAST, "linearard": {"steps": 6, "batch_size": 2, "checkpoint_every": 2}}, 5, 4),
    # killed in the second stage of a sequence: the finished first stage is not redone
    ("linearard+cpt", {**FAST, "cpt": {"steps": 2, "batch_size": 1},
                       "linearard": {"steps": 4, "batch_size": 2, "checkpoint_every": 2}}, 5, 4),
])
def test_killed_run_resumes_on_the_uninterrupted_loss_curve(inputs, tmp_path, method, section, kill_at, resume_at):
    whole, _, _ = run_method(inputs, tmp_path / "whole", method, section)
    with pytest.raises(Killed):
        run_method(inputs, tmp_path / "killed", method, section, on_step=_kill_after(kill_at))
    out, ckpt = tmp_path / "killed" / "out" / method, tmp_path / "killed" / "ckpt" / method
    assert not out.exists() and ckpt.exists()
    run_method(inputs, tmp_path / "killed", method, section)
    info = json.loads((out / "restore.json").read_text())
    assert info["resumed_from_step"] == resume_at
    resumed, uninterrupted = read_log(out), read_log(whole)
    assert [r["step"] for r in resumed] == [r["step"] for r in uninterrupted]
    columns = [c for c in uninterrupted[0] if c.startswith("loss") or c in ("stage", "lr", "tokens", "grad_norm")]
    for got, want in zip(resumed, uninterrupted):
        for column in columns:
            if want[column] in ("", "cpt", "linearard"):  # a column another stage fills, or the stage name
                assert got[column] == want[column], column
            else:
                assert float(got[column]) == pytest.approx(float(want[column]), rel=1e-5, abs=1e-12), column
    assert info["train_tokens"] == json.loads((whole / "restore.json").read_text())["train_tokens"]


@pytest.mark.parametrize("change", ["config", "student"])
def test_a_changed_job_does_not_resume_a_stale_checkpoint(inputs, tmp_path, change):
    section = {**FAST, "linearard": {"steps": 4, "batch_size": 2, "checkpoint_every": 1}}
    job = tmp_path / "inputs"
    shutil.copytree(inputs, job)
    with pytest.raises(Killed):
        run_method(job, tmp_path, "linearard", section, on_step=_kill_after(2))
    if change == "config":
        section = {**FAST, "linearard": {**section["linearard"], "lr": 0.002}}
    else:  # the scale stage rewrote the student
        weights = job / "student" / "model.safetensors"
        os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    out, _, _ = run_method(job, tmp_path, "linearard", section)
    assert json.loads((out / "restore.json").read_text())["resumed_from_step"] is None


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("method,override,needle", [
    ("nosuch", {}, "unknown restore method 'nosuch'"),
    ("none", {}, "restore method 'none'"),
    ("linearard", {"student": "/nonexistent/student"}, "student model directory not found"),
    ("linearard", {"teacher": "/nonexistent/teacher"}, "teacher model directory not found"),
    ("linearard", {"data": "/nonexistent/data"}, "training tokens not found"),
    ("linearard", {"scaling": "yarn-8x"}, "no scaling variant named yarn-8x"),
])
def test_bad_input_is_one_line_error_and_no_output(inputs, tmp_path, capsys, method, override, needle):
    config_path = write_config(tmp_path)
    code = restore.main(argv(inputs, config_path, method, tmp_path, **override))
    err = capsys.readouterr().err.strip()
    assert code == 1 and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_cli_exit_status(inputs, tmp_path):
    config_path = write_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "ard", "restore", *argv(inputs, config_path, "nosuch", tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: unknown restore method 'nosuch' (known: cpt, linearard, "
                                                  "linearard+cpt, logits_kd, longred)"]
    assert not (tmp_path / "out").exists()
