"""Scoring for the local tasks: RULER's string match, LongBench's retrieval/count/F1 scores, windowed perplexity.

Each function is an lm-eval `process_results(doc, results)`. The LongBench definitions are restated here
(from THUDM/LongBench, as lm-eval ships them) because lm-eval's own module imports jieba, fuzzywuzzy and rouge.
"""
import re
import string
from collections import Counter


def _string_match(prediction, references):
    prediction = prediction.lower()
    return [float(reference.lower() in prediction) for reference in references]


def string_match_all(doc, results):
    """RULER: the share of the expected strings that occur in the generation."""
    hits = _string_match(results[0], doc["outputs"])
    return {"string_match_all": sum(hits) / len(hits)}


def string_match_part(doc, results):
    """RULER (QA tasks): 1 if any accepted answer occurs in the generation."""
    return {"string_match_part": max(_string_match(results[0], doc["outputs"]))}


def _number_score(prediction, answer):
    """LongBench count/retrieval score: the share of numbers in the prediction that equal the answer."""
    numbers = re.findall(r"\d+", prediction)
    return numbers.count(answer) / len(numbers) if numbers else 0.0


def retrieval_score(doc, results):
    return {"retrieval_score": _number_score(results[0], doc["outputs"][0])}


def count_score(doc, results):
    return {"count_score": _number_score(results[0], doc["outputs"][0])}


def _normalize_answer(text):
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def qa_f1(doc, results):
    """LongBench qa_f1_score: token F1 after SQuAD-style normalisation, best over the accepted answers."""
    prediction = _normalize_answer(results[0]).split()
    best = 0.0
    for answer in doc["outputs"]:
        reference = _normalize_answer(answer).split()
        same = sum((Counter(prediction) & Counter(reference)).values())
        if same:
            precision, recall = same / len(prediction), same / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return {"f1": best}


def window_perplexity(doc, results):
    """Perplexity of a window's last tokens given the rest of the window (weights from the data stage)."""
    loglikelihood, _ = results[0]
    return {
        "token_perplexity": (loglikelihood, doc["n_tokens"]),
        "word_perplexity": (loglikelihood, doc["n_words"]),
        "bits_per_byte": (loglikelihood, doc["n_bytes"]),
    }
