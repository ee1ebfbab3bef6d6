"""Exact, linear-memory relation KL (LinearARD) with Triton kernels for CUDA and a chunked PyTorch CPU path."""
from .interface import relation_kl
from .reference import relation_kl_reference

__all__ = ["relation_kl", "relation_kl_reference"]
