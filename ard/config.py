"""Load, default-fill and validate an experiment config against workflow/schemas.

The top-level schema lives in config.schema.yaml; the `restore` and `evaluation` sections each have a
schema file of their own (restore.schema.yaml, evaluation.schema.yaml) spliced in here, so that the
stage owning a section also owns its schema. A named restore variant (`cpt-10x: {method: cpt, ...}`) is
checked against its base method's schema, spliced in per config.
"""
import copy
import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO_ROOT / "workflow" / "schemas"
SECTION_SCHEMAS = {"restore": "restore.schema.yaml", "evaluation": "evaluation.schema.yaml"}


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the offending key."""


def _with_defaults(validator_class):
    """A validator that also writes each property's `default` into the instance (before checking it)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(config=None):
    """The config schema; given a config, with its named restore variants spliced in."""
    schema = yaml.safe_load((SCHEMA_DIR / "config.schema.yaml").read_text())
    for section, filename in SECTION_SCHEMAS.items():
        schema["properties"][section] = yaml.safe_load((SCHEMA_DIR / filename).read_text())
    restore = schema["properties"]["restore"]
    # A restore method exists exactly when the restore schema describes its hyperparameters.
    methods = list(restore["properties"])
    method = _variant_schema(schema)["properties"]["method"]
    method["enum"] = methods
    variants = _named_variants(config, methods)
    for name, base in variants.items():
        if base:  # the others meet the generic variant schema, which says what is wrong with their `method`
            own = restore["properties"][base]
            restore["properties"][name] = {**own, "required": ["method"],
                                           "properties": {**own["properties"], "method": method}}
    schema["properties"]["restores"]["items"]["enum"] = ["none", *methods, *variants]
    return schema


def _variant_schema(schema):
    """The schema of a named restore variant whose `method` names no method (yet)."""
    return schema["properties"]["restore"]["additionalProperties"]


def _methods(schema):
    return _variant_schema(schema)["properties"]["method"]["enum"]


def _named_variants(config, methods):
    """{name: its base method, or None where `method` names no method} of the config's restore variants."""
    sections = (config or {}).get("restore")
    if not isinstance(sections, dict):
        return {}
    bases = {name: section.get("method") if isinstance(section, dict) else None
             for name, section in sections.items() if name not in methods}
    return {name: base if base in methods else None for name, base in bases.items()}


def _overlay(base, own):
    """`base` with `own`'s keys over it, nested mappings merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in own.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _overlay(merged[key], value) if nested else copy.deepcopy(value)
    return merged


def _inherit_variant_sections(config, methods):
    """Each named variant's section becomes its base method's section as written, overlaid with its own.

    On a resolved config the variant already holds every key, so this changes nothing: validating twice
    gives what validating once gives.
    """
    sections = config.get("restore")
    for name, base in _named_variants(config, methods).items():
        if base and isinstance(sections.get(base), dict) and isinstance(sections[name], dict):
            sections[name] = _overlay(sections[base], sections[name])


def _error_path(error):
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def _error_line(error, schema):
    """`config error at <key>: <what is wrong>` for a jsonschema error."""
    path, message = _error_path(error), error.message
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        message = f"unknown key {', '.join(map(repr, unknown))} (allowed: {allowed})"
    elif "propertyNames" in error.absolute_schema_path:  # the only one: a restore variant's name
        path = f"{path}.{error.instance}"
        message = "not a valid variant name (letters, digits and _.+-, a letter or digit first; not 'none')"
    elif error.validator == "required" and error.schema is _variant_schema(schema):
        message = f"not a restore method ({', '.join(_methods(schema))}); a named variant of one needs `method`"
    return f"config error at {path}: {message}"


def validate(config):
    """Fill defaults in place and validate; raise ConfigError with a one-line message."""
    schema = load_schema(config)
    _inherit_variant_sections(config, _methods(schema))
    validator = DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        raise ConfigError(_error_line(errors[0], schema))
    _check_semantics(config)
    return config


def _check_semantics(config):
    teacher = config["teacher"]
    if teacher["source"] == "path":
        path = teacher.get("path")
        if not path:
            raise ConfigError("config error at teacher.path: required when teacher.source is 'path'")
        looks_like_hub_id = path.count("/") == 1 and not path.startswith((".", "/", "~"))
        if not os.path.isdir(os.path.expanduser(path)) and not looks_like_hub_id:
            raise ConfigError(f"config error at teacher.path: no such directory: {path}")
    if teacher["source"] == "gguf":
        gguf = teacher["gguf"]
        by_package = gguf["package"] or gguf["file"]
        if bool(gguf["path"]) == bool(by_package) or (by_package and not (gguf["package"] and gguf["file"])):
            raise ConfigError("config error at teacher.gguf: give either path, or package and file")
    if teacher["source"] != "pretrain" and config["data"]["tokenizer"]["path"]:
        raise ConfigError(
            f"config error at data.tokenizer.path: a {teacher['source']} teacher brings its own tokenizer; remove the key"
        )
    names = [scaling_name(s) for s in config["scalings"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"config error at scalings: duplicate scaling variant {duplicates[0]}")
    for restore, section in config["restore"].items():
        for index, name in enumerate(section["scalings"] or []):
            if name not in names:
                raise ConfigError(f"config error at restore.{restore}.scalings.{index}: no scaling variant named {name}"
                                  f" (the config's: {', '.join(names)})")


_EXPONENT_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def typed_overrides(overrides):
    """Snakemake's `--config` values with the scalars inside lists and mappings read as YAML reads them.

    Snakemake parses a nested `--config` value with YAML's base loader, so `factor: 0.5` inside a list
    arrives as the string '0.5'; each such string is re-read as a YAML scalar ('0.5' → 0.5, 'true' → True).
    """

    def typed(value, nested):
        if isinstance(value, dict):
            return {key: typed(item, True) for key, item in value.items()}
        if isinstance(value, list):
            return [typed(item, True) for item in value]
        if nested and isinstance(value, str) and value:
            if _EXPONENT_NUMBER.fullmatch(value):  # YAML 1.1 reads 3e-3 (no dot) as a string
                return float(value)
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            return parsed if parsed is None or isinstance(parsed, (bool, int, float, str)) else value
        return value

    return {key: typed(value, False) for key, value in overrides.items()}


def load(path):
    """Read a YAML config file, fill defaults and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config error: no such config file: {path}")
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"config error: {path} does not hold a mapping")
    return validate(config)


def config_sha(config):
    """Short, stable fingerprint of a resolved config (recorded in summary.csv)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def format_factor(factor):
    return f"{factor:g}"


def scaling_name(scaling):
    """`linear` ×4 → `linear-4x`: the first half of a variant name."""
    return f"{scaling['type']}-{format_factor(scaling['factor'])}x"


NATIVE = "native"


def native_context(config, teacher_dir=None):
    """The teacher's trained context: teacher.native_context if set, else the pretrained architecture's
    max_position_embeddings, else the one in the teacher's model config: `teacher_dir` (the teacher
    stage's output) or, for a path teacher, its path."""
    teacher = config["teacher"]
    if teacher["native_context"]:
        return teacher["native_context"]
    if teacher["source"] == "pretrain":
        return teacher["architecture"]["max_position_embeddings"]
    source = teacher_dir or (teacher["path"] if teacher["source"] == "path" else None)
    if source is None:
        raise ConfigError(
            "config error at teacher.native_context: not set, and no converted teacher to read it from (run the teacher stage first)"
        )
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source).max_position_embeddings
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"config error at teacher.native_context: cannot read max_position_embeddings of {source}"
            f" ({error}); set teacher.native_context"
        ) from error


def variants(config):
    """Every (scaling, restore) pair the experiment produces, the native teacher first; a restore whose
    section lists `scalings` is produced on those only."""
    pairs = [(NATIVE, "none")]
    for scaling in map(scaling_name, config["scalings"]):
        for restore in config["restores"]:
            if restore == "none" or scaling in (config["restore"][restore]["scalings"] or [scaling]):
                pairs.append((scaling, restore))
    return pairs


def restore_seeds(config, restore):
    """The seeds a restore runs with: its section's `seeds`, else the config's `seeds`, else its one `seed`."""
    return list(config["restore"][restore]["seeds"] or config["seeds"] or [config["seed"]])


def runs(config):
    """Every (scaling, restore, seed) that is evaluated: unrestored variants once (seed None), each
    restored one once per seed of its restore."""
    return [
        (scaling, restore, None) if restore == "none" else (scaling, restore, seed)
        for scaling, restore in variants(config)
        for seed in ([None] if restore == "none" else restore_seeds(config, restore))
    ]


def suite_evaluation(config, suite):
    """The evaluation settings one suite's results depend on: the shared ones and its own overrides, not
    the suite list nor other suites' overrides, so changing one suite reruns only that suite."""
    evaluation = config["evaluation"]
    shared = {key: value for key, value in evaluation.items() if key not in ("suites", "overrides")}
    return {**shared, "suite": suite, "overrides": evaluation["overrides"].get(suite)}


def scaling_spec(config, name):
    for scaling in config["scalings"]:
        if scaling_name(scaling) == name:
            return scaling
    raise ConfigError(f"config error at scalings: no scaling variant named {name}")
