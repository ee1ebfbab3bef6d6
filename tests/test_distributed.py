"""Data-parallel restoration over torch.distributed (gloo on CPU): two ranks take the steps one process takes
on the same global batch, write one adapter, and a killed two-rank job resumes on the uninterrupted curve."""
import json
import os
import subprocess
import time

import psutil
import pytest
import torch
from safetensors.torch import load_file

from ard.restore_methods import launcher
from test_linearard import NATIVE
from test_restore import FAST, argv, inputs, read_log, write_config  # noqa: F401 (inputs is a fixture)

# dropout 0: a dropout mask over a slice cannot equal the one drawn over the whole batch
SECTION = {**FAST, "linearard": {"steps": 6, "batch_size": 4, "checkpoint_every": 1, "lora": {"rank": 4, "dropout": 0.0}}}
LOSS_COLUMNS = ("loss", "loss_qq", "loss_kk", "loss_vv", "grad_norm")


def restore(inputs, tmp, ranks, steps=6, **popen):
    config = write_config(tmp, {**SECTION, "linearard": {**SECTION["linearard"], "steps": steps}})
    args = [*launcher(ranks), "restore", *argv(inputs, config, "linearard", tmp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "out" / "linearard"


@pytest.fixture(scope="module")
def one_process(inputs, tmp_path_factory):
    return restore(inputs, tmp_path_factory.mktemp("one"), 1)


def _same_curve(got, want):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want):
        for column in LOSS_COLUMNS:
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-4, abs=1e-7), column


def test_two_ranks_take_the_steps_one_process_takes(inputs, one_process, tmp_path):
    two = restore(inputs, tmp_path, 2)
    _same_curve(read_log(two), read_log(one_process))
    adapters = [load_file(out / "adapter" / "adapter_model.safetensors") for out in (two, one_process)]
    assert adapters[0].keys() == adapters[1].keys()
    for key in adapters[0]:
        torch.testing.assert_close(adapters[0][key], adapters[1][key], rtol=1e-3, atol=1e-5)
    info = json.loads((two / "restore.json").read_text())
    assert info["ranks"] == 2 and info["train_tokens"] == 6 * 4 * NATIVE  # every step reads the global batch


def test_killed_two_rank_job_resumes_on_the_uninterrupted_curve(inputs, tmp_path):
    long = 80  # long enough to be caught half-way
    uninterrupted = restore(inputs, tmp_path / "one", 1, steps=long)
    job = restore(inputs, tmp_path, 2, steps=long, popen=True)
    state = tmp_path / "ckpt" / "linearard" / "0-linearard" / "state.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.poll() is None:
        if state.is_file() and torch.load(state, weights_only=False)["step"] >= 10:
            break
        time.sleep(0.05)
    assert job.poll() is None, "the job finished before it could be killed"
    # the launcher and every rank at once, as a cluster kills a job (torchrun's ranks are not in its group)
    tree = psutil.Process(job.pid)
    processes = [*tree.children(recursive=True), tree]
    for process in processes:
        process.kill()
    job.wait()
    psutil.wait_procs(processes, timeout=30)
    assert not (tmp_path / "out" / "linearard").exists()
    out = restore(inputs, tmp_path, 2, steps=long)
    resumed = json.loads((out / "restore.json").read_text())["resumed_from_step"]
    assert 10 <= resumed < long
    _same_curve(read_log(out), read_log(uninterrupted))


def test_an_uneven_split_is_a_clear_error(inputs, tmp_path):
    config = write_config(tmp_path, {**SECTION, "linearard": {**SECTION["linearard"], "batch_size": 3}})
    result = subprocess.run([*launcher(2), "restore", *argv(inputs, config, "linearard", tmp_path)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0 and "does not split evenly over 2 ranks" in result.stderr
    assert not (tmp_path / "out" / "linearard").exists()
