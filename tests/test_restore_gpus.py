"""scripts/experiments/restore_gpus.py, the one- against two-GPU restoration benchmark, on CPU ranks (gloo):
it writes a row per rank count, and with one global batch both counts take the same steps."""
import csv
import os
import subprocess
import sys

from ard.config import REPO_ROOT


def test_one_and_two_ranks_give_rows_and_the_same_curve(tmp_path):
    out = tmp_path / "bench.csv"
    command = [sys.executable, str(REPO_ROOT / "scripts" / "experiments" / "restore_gpus.py"), "--shape", "tiny",
               "--device", "cpu", "--dtype", "float32", "--gpus", "1", "2", "--global-batch", "2", "--steps", "4",
               "--warmup", "1", "--factor", "4", "--lora-rank", "4", "--lora-alpha", "8", "--lr", "1e-3",
               "--work", str(tmp_path / "work"), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'kernels'}"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert [(row["gpus"], row["global_batch"], row["seq_len"]) for row in rows] == [("1", "2", "64"), ("2", "2", "64")]
    for row in rows:
        assert float(row["s_per_step"]) > 0 and float(row["tokens_per_s"]) > 0 and float(row["peak_memory_gib"]) > 0
    assert float(rows[0]["speedup"]) == 1.0
    ratio = float(rows[1]["tokens_per_s"]) / float(rows[0]["tokens_per_s"])
    assert abs(float(rows[1]["speedup"]) - ratio) < 1e-3
    assert float(rows[1]["max_loss_diff"]) <= 1e-4 * abs(float(rows[0]["final_loss"])) + 1e-9
