"""Stage `scale`: the student = the teacher's weights with scaled RoPE (the variant `<scaling>-<f>x/none`).

RoPE is changed only by merging into `config.rope_parameters` (replacing the dict through the deprecated
`rope_scaling` alias drops `rope_theta` in transformers 5). `max_position_embeddings` becomes factor ×
native, except for `dynamic`, whose NTK rule in transformers measures growth against
`max_position_embeddings` itself and so must keep the native value.
"""
import math
import shutil
from pathlib import Path

from ard import config as ard_config
from ard.io import atomic_dir, write_json
from ard.runtime import stage_main, stage_parser

SCALING_INFO = "scaling.json"
# Files of the teacher directory that describe the teacher rather than the weights.
_NOT_COPIED = {"config.json", "teacher.json"}


def _yarn_ramp_factors(head_dim, theta, native, factor, beta_fast=32.0, beta_slow=1.0):
    """Per-frequency rescale factors: 1 for dimensions that rotate many times inside the native window,
    `factor` for those that rotate less than once, linear in between (the YaRN ramp, used to seed LongRoPE)."""
    factors = []
    for i in range(head_dim // 2):
        rotations = native / (2 * math.pi * theta ** (2 * i / head_dim))
        ramp = min(1.0, max(0.0, (beta_fast - rotations) / (beta_fast - beta_slow)))
        factors.append(1.0 + (factor - 1.0) * ramp)
    return factors


def scaled_rope(rope_parameters, scaling, native, head_dim):
    """The new rope_parameters dict and max_position_embeddings for one scaling spec."""
    kind, factor = scaling["type"], float(scaling["factor"])
    theta = float(rope_parameters["rope_theta"])
    target = int(round(native * factor))
    common = {"factor": factor, "original_max_position_embeddings": native}
    if kind == "linear":
        update = {"rope_type": "linear", "factor": factor}
    elif kind == "dynamic":
        update = {"rope_type": "dynamic", "factor": factor}
        target = native
    elif kind == "yarn":
        update = {"rope_type": "yarn", **common}
        update.update({k: float(scaling[k]) for k in ("beta_fast", "beta_slow", "attention_factor") if k in scaling})
    elif kind == "longrope":
        update = {
            "rope_type": "longrope",
            **common,
            "short_factor": [1.0] * (head_dim // 2),
            "long_factor": _yarn_ramp_factors(
                head_dim, theta, native, factor, scaling.get("beta_fast", 32.0), scaling.get("beta_slow", 1.0)
            ),
        }
    elif kind == "llama3":
        update = {
            "rope_type": "llama3",
            **common,
            "low_freq_factor": float(scaling.get("low_freq_factor", 1.0)),
            "high_freq_factor": float(scaling.get("high_freq_factor", 4.0)),
        }
    elif kind == "abf":
        # NTK-aware base change: stretches the lowest frequency by `factor` and leaves the highest alone.
        new_theta = scaling.get("rope_theta") or theta * factor ** (head_dim / (head_dim - 2))
        update = {"rope_type": "default", "rope_theta": float(new_theta)}
    else:
        raise ValueError(f"unknown scaling type: {kind}")
    return {**rope_parameters, **update}, target


def build(config, scaling_name, teacher_dir, out):
    from transformers import AutoConfig

    teacher_dir = Path(teacher_dir)
    if not (teacher_dir / "config.json").is_file():
        raise FileNotFoundError(f"no teacher model under {teacher_dir} (run `ard teacher` first)")
    scaling = ard_config.scaling_spec(config, scaling_name)
    model_config = AutoConfig.from_pretrained(teacher_dir)
    native = config["teacher"]["native_context"] or model_config.max_position_embeddings
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // model_config.num_attention_heads
    rope_parameters, target = scaled_rope(dict(model_config.rope_parameters), scaling, native, head_dim)
    model_config.rope_parameters = rope_parameters
    model_config.max_position_embeddings = target
    with atomic_dir(out) as tmp:
        for path in teacher_dir.iterdir():
            if path.name not in _NOT_COPIED:
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
        model_config.save_pretrained(tmp)
        write_json(
            tmp / SCALING_INFO,
            {
                "scaling": scaling_name,
                "spec": scaling,
                "native_context": native,
                "target_context": int(round(native * float(scaling["factor"]))),
                "rope_parameters": rope_parameters,
            },
        )


@stage_main
def main(argv=None):
    parser = stage_parser("ard scale", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--scaling", required=True, help="scaling variant name, e.g. linear-4x")
    parser.add_argument("--teacher", required=True, help="teacher model directory")
    parser.add_argument("--out", required=True, help="scaled model directory to write")
    args = parser.parse_args(argv)
    build(ard_config.load(args.config), args.scaling, Path(args.teacher), Path(args.out))
