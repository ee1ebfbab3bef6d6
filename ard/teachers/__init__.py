"""Where the native teacher comes from, one module per `teacher.source`.

  pretrain  a small LLaMA trained here on the corpus (needs the data stage's tokenizer and tokens)
  gguf      a llama.cpp GGUF file, converted by transformers' GGUF loader into a plain HF directory
  path      a Hugging Face model directory or hub id, saved as it is
Each writes one HF model directory holding the model, its tokenizer and `teacher.json` (TEACHER_INFO).
The real sources (gguf, path) bring their own tokenizer, which the data stage then takes from the teacher.
"""
TEACHER_INFO = "teacher.json"
REAL_SOURCES = ("gguf", "path")


def is_real(config):
    """Whether the teacher is a given model (its tokenizer and native context come from it)."""
    return config["teacher"]["source"] in REAL_SOURCES
