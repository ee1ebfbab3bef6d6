"""Small stand-ins for the data stage and the teacher, built in seconds for the evaluation tests."""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = Path(__file__).parent / "corpus"
EOS = "<|endoftext|>"


def _documents(document_characters=8000):
    """Cut each corpus file into documents at line ends, as the data stage does."""
    for path in sorted(CORPUS.glob("*.txt")):
        text, start, index = path.read_text(), 0, 0
        while start < len(text):
            end = text.find("\n", start + document_characters)
            end = len(text) if end < 0 else end + 1
            yield {"id": f"{path.stem}-{index}", "source": path.stem, "text": text[start:end]}
            start, index = end, index + 1


def build_tokenizer(vocab_size=1024):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator((doc["text"] for doc in _documents()), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS)


def build_data_dir(root, native_context):
    """A data-stage output: splits/{train,val,test}.jsonl, tokenizer/ (every document in test) and meta.json."""
    root = Path(root)
    (root / "splits").mkdir(parents=True)
    docs = list(_documents())
    lines = "".join(json.dumps(doc) + "\n" for doc in docs)
    for split in ("train", "val", "test"):
        (root / "splits" / f"{split}.jsonl").write_text(lines)
    build_tokenizer().save_pretrained(root / "tokenizer")
    (root / "meta.json").write_text(json.dumps({"native_context": native_context}))
    return root


def build_model_dir(root, tokenizer_dir, native_context=64, seed=0):
    """A random-init LLaMA (a few hundred k parameters) with its tokenizer, saved as a HF model dir."""
    import torch

    torch.manual_seed(seed)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=native_context,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return Path(root)
