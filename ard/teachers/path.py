"""Teacher source `path`: a Hugging Face model directory or hub id, saved with its own tokenizer."""
from ard.io import atomic_dir, write_json
from ard.teachers import TEACHER_INFO


def build(config, out):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = config["teacher"]["path"]
    model = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
    tokenizer = AutoTokenizer.from_pretrained(source)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / TEACHER_INFO, {"source": "path", "path": source, "train_tokens": 0})
