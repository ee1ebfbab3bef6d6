"""Run the Triton kernels through the interpreter, so the Triton path is tested on CPU.

TRITON_INTERPRET is read when the kernels are defined; if something imported them before this file,
define them again.
"""
import importlib
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

if "relation_kl.triton_relation_kl" in sys.modules:
    importlib.reload(sys.modules["relation_kl.triton_relation_kl"])
