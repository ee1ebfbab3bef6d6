#!/usr/bin/env bash
# The GPU demonstration on a CUDA machine without network access, whose Python (3.12) already has torch,
# transformers and peft. What it lacks (lm-eval, snakemake, datasets + pyarrow, the corpus packages...)
# travels as one archive of an unpacked Python 3.12 site folder, made on a networked machine by
# `.venv/bin/python scripts/pack_device_site.py` and carried as .device/site312.tar.xz.
#   bash scripts/device_demo.sh run [snakemake args]   # config/gpu-demo.yaml; results to $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-docs/results/gpu-demo}
archive=.device/site312.tar.xz

run() {
    [ -d .device/site ] || { mkdir -p .device/site && tar -xJf "$archive" -C .device/site; }
    export PYTHONPATH="$PWD:$PWD/kernels:$PWD/.device/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    mkdir -p "$out"
    "$python" - <<'PY' | tee "$out/versions.txt"
import datetime, platform, torch, triton, transformers, peft, lm_eval, snakemake
print(f"date {datetime.date.today()}  python {platform.python_version()}  torch {torch.__version__}"
      f"  triton {triton.__version__}  transformers {transformers.__version__}  peft {peft.__version__}"
      f"  lm_eval {lm_eval.__version__}  snakemake {snakemake.__version__}  gpu {torch.cuda.get_device_name()}")
PY
    start=$(date +%s)
    # Stop short of the caller's own limit (DEMO_SECONDS) so that what finished is still copied out.
    timeout "${DEMO_SECONDS:-540}" "$python" -m snakemake --cores "$(nproc)" --configfile config/gpu-demo.yaml \
        --keep-going "$@" 2>&1 | tail -n 40 || true
    echo "wall seconds: $(( $(date +%s) - start ))" | tee -a "$out/versions.txt"
    cp results/gpu-demo/summary.csv results/gpu-demo/summary.md "$out/" 2>/dev/null || true
    # Train logs, stage timings and the teacher's own figures, in one archive (few files come back).
    tar -czf "$out/logs.tar.gz" results/gpu-demo/config.yaml results/gpu-demo/variants/*/*/train_log.csv \
        results/gpu-demo/variants/*/*/restore.json results/gpu-demo/variants/native/none/model/teacher.json \
        benchmarks/gpu-demo logs/gpu-demo 2>/dev/null || true
}

[ "${1:-}" = run ] || { echo "usage: device_demo.sh run [snakemake args]"; exit 2; }
shift
run "$@"
