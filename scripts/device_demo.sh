#!/usr/bin/env bash
# The GPU demonstration on a CUDA machine without network access, whose Python already has torch,
# transformers and peft. The missing packages travel as Python 3.12 wheels in .wheels/a and .wheels/b
# (pyarrow alone, which is too large to travel with the rest in one call); each is installed once.
#   bash scripts/device_demo.sh install   # install what is in .wheels/ (run with each part carried)
#   bash scripts/device_demo.sh run       # snakemake on config/gpu-demo.yaml; copies results to $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-docs/results/gpu-demo}

install() {
    for part in .wheels/a .wheels/b; do
        if compgen -G "$part/*.whl" >/dev/null; then
            "$python" -m pip install -q --no-index --no-deps "$part"/*.whl
        fi
    done
    "$python" -c "import pyarrow, datasets, lm_eval, snakemake" 2>/dev/null && echo "installed: ready to run" \
        || echo "installed part; still missing: $("$python" -c 'import pyarrow' 2>&1 | tail -1)"
}

run() {
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    mkdir -p "$out"
    "$python" - <<'PY' | tee "$out/versions.txt"
import platform, torch, triton, transformers, peft, lm_eval, snakemake
print(f"date {__import__('datetime').date.today()}  python {platform.python_version()}  torch {torch.__version__}"
      f"  triton {triton.__version__}  transformers {transformers.__version__}  peft {peft.__version__}"
      f"  lm_eval {lm_eval.__version__}  snakemake {snakemake.__version__}  gpu {torch.cuda.get_device_name()}")
PY
    start=$(date +%s)
    "$python" -m snakemake --cores "$(nproc)" --configfile config/gpu-demo.yaml --keep-going 2>&1 | tail -n 60
    echo "wall seconds: $(( $(date +%s) - start ))" | tee -a "$out/versions.txt"
    cp results/gpu-demo/summary.csv results/gpu-demo/summary.md "$out/" 2>/dev/null || true
    # Train logs, stage timings and the teacher's own figures, in one archive (few files come back).
    tar -czf "$out/logs.tar.gz" results/gpu-demo/variants/*/*/train_log.csv results/gpu-demo/variants/*/*/restore.json \
        results/gpu-demo/variants/native/none/model/training.json benchmarks/gpu-demo logs/gpu-demo 2>/dev/null || true
}

"${1:?usage: device_demo.sh install|run}"
