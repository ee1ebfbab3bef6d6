"""LinearARD: capture of post-RoPE Q/K/V through the attention interface, and the loss against its definition."""
import copy

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from ard.restore_methods import capture, linearard
from ard.restore_methods.context import Context

NATIVE, FACTOR, VOCAB = 32, 4.0, 96


def tiny_config(native=NATIVE, vocab=VOCAB):
    return LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       intermediate_size=128, vocab_size=vocab, max_position_embeddings=native)


def scaled(config, factor=FACTOR):
    config = copy.deepcopy(config)
    config.rope_parameters = {**config.rope_parameters, "rope_type": "linear", "factor": factor}
    config.max_position_embeddings = int(config.max_position_embeddings * factor)
    return config


def tiny_pair(seed=0, lora_dropout=0.0):
    """(teacher, peft student): random-init GQA LLaMA, the student its copy with ×4 linear RoPE and LoRA."""
    torch.manual_seed(seed)
    teacher = LlamaForCausalLM(tiny_config()).eval().requires_grad_(False)
    student = LlamaForCausalLM(scaled(teacher.config))
    student.load_state_dict(teacher.state_dict())
    # Random (not zero) LoRA B, so that gradients reach both LoRA matrices.
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=lora_dropout, target_modules=["q_proj", "k_proj", "v_proj"],
                      init_lora_weights=False)
    return capture.enable(teacher), get_peft_model(capture.enable(student), lora)


# ------------------------------------------------------------------------------------------- capture
def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x, positions, theta, factor):
    """RoPE written out: linear scaling divides positions by the factor."""
    dim = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = (positions.double()[:, None] / factor) * inv_freq[None]
    emb = torch.cat((angles, angles), dim=-1)
    return (x.double() * emb.cos() + _rotate_half(x.double()) * emb.sin()).float()


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_capture_sees_post_rope_q_and_k(which):
    teacher, student = tiny_pair()
    model = teacher if which == "teacher" else student.get_base_model()
    factor = 1.0 if which == "teacher" else FACTOR
    ids = torch.randint(0, VOCAB, (2, 20))
    with torch.no_grad(), capture.record() as recorded:
        model(input_ids=ids)
        attention = model.model.layers[0].self_attn
        h = model.model.layers[0].input_layernorm(model.model.embed_tokens(ids))
        q = attention.q_proj(h).view(2, 20, -1, 16).transpose(1, 2)
        k = attention.k_proj(h).view(2, 20, -1, 16).transpose(1, 2)
        v = attention.v_proj(h).view(2, 20, -1, 16).transpose(1, 2)
    assert sorted(recorded) == [0, 1]
    got = recorded[0]
    assert got.q.shape == (2, 4, 20, 16) and got.k.shape == (2, 2, 20, 16)  # GQA K/V un-expanded
    theta = model.config.rope_parameters["rope_theta"]
    positions = torch.arange(20)
    torch.testing.assert_close(got.q, _rope(q, positions, theta, factor), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.k, _rope(k, positions, theta, factor), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.v, v)
    assert not torch.allclose(got.q, q, atol=1e-3)  # RoPE did change Q


def test_capture_only_inside_record_and_only_selected_layers():
    teacher, _ = tiny_pair()
    ids = torch.randint(0, VOCAB, (1, 8))
    with capture.record([1]) as recorded:
        teacher(input_ids=ids)
    teacher(input_ids=ids)
    assert sorted(recorded) == [1]


def test_capture_respects_padding_masks():
    """Left padding: valid positions must see exactly what the unpadded sequence sees (a mask silently
    dropped to None would let them attend to the padding)."""
    teacher, _ = tiny_pair()
    ids = torch.randint(0, VOCAB, (1, 12))
    pad = 5
    padded = torch.cat([torch.zeros(1, pad, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(1, pad, dtype=torch.long), torch.ones(1, 12, dtype=torch.long)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        with capture.record() as plain:
            reference = teacher(input_ids=ids).logits
        with capture.record() as masked:
            out = teacher(input_ids=padded, attention_mask=mask, position_ids=positions).logits
        unmasked = teacher(input_ids=padded, position_ids=positions).logits
    torch.testing.assert_close(out[:, pad:], reference, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unmasked[:, pad:], reference, atol=1e-3)  # the padding matters
    for layer in plain:
        # Layer 1's inputs depend on layer 0's attention, so equal K there means the mask was honoured.
        torch.testing.assert_close(masked[layer].k[:, :, pad:], plain[layer].k, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------- the loss
def _materialised_relation_kl(xs, xt, mask):
    """Σ over heads and valid rows of KL(P_t ‖ P_s), P = row softmax of causal scale·x xᵀ over valid keys."""
    scale = xs.shape[-1] ** -0.5
    length = xs.shape[2]
    valid = torch.ones(length, length, dtype=torch.bool).tril()[None, None] & mask[:, None, None, :].bool()
    logits_s = (scale * xs.double() @ xs.double().transpose(-1, -2)).masked_fill(~valid, float("-inf"))
    logits_t = (scale * xt.double() @ xt.double().transpose(-1, -2)).masked_fill(~valid, float("-inf"))
    log_s, log_t = logits_s.log_softmax(-1), logits_t.log_softmax(-1)
    terms = torch.where(valid, log_t.exp() * (log_t - log_s), torch.zeros((), dtype=torch.float64))
    row_kl = terms.sum(-1)  # [B, H, T]
    return (row_kl * mask[:, None, :]).sum()


def _materialised_loss(student, teacher, relations, weights, layers, mask):
    per_relation = {r: [] for r in relations}
    for layer in layers:
        for relation in relations:
            field = linearard.FIELDS[relation]
            xs, xt = getattr(student[layer], field), getattr(teacher[layer], field)
            kl = _materialised_relation_kl(xs, xt, mask)
            per_relation[relation].append(kl / (mask.sum() * xs.shape[1]))
    return sum(weights[r] * torch.stack(v).mean() for r, v in per_relation.items())


def _lora_grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("relations,layers,padded", [
    (["qq", "kk", "vv"], [0, 1], False),
    (["qq", "vv"], [1], True),
])
def test_linearard_loss_matches_materialised_definition(relations, layers, padded):
    teacher, student = tiny_pair(seed=1)
    weights = {"qq": 1.0, "kk": 0.5, "vv": 2.0}
    ids = torch.randint(0, VOCAB, (2, NATIVE))
    mask = torch.ones(2, NATIVE, dtype=torch.long)
    if padded:
        mask[1, -7:] = 0  # right padding of the second row
    with torch.no_grad(), capture.record(layers) as t_rec:
        teacher(input_ids=ids, attention_mask=mask)

    def project():
        with capture.record(layers) as s_rec:
            student(input_ids=ids, attention_mask=mask)
        losses = linearard.relation_losses(s_rec, t_rec, relations, layers, attention_mask=mask.bool())
        return linearard.combine(losses, weights)

    def reference():
        with capture.record(layers) as s_rec:
            student(input_ids=ids, attention_mask=mask)
        return _materialised_loss(s_rec, t_rec, relations, weights, layers, mask)

    value = project()
    value.backward()
    got = _lora_grads(student)
    student.zero_grad()
    expected = reference()
    expected.backward()
    want = _lora_grads(student)
    assert value.item() > 0
    torch.testing.assert_close(value.double(), expected, rtol=1e-4, atol=1e-9)
    assert got.keys() == want.keys() and any(g.abs().max() > 0 for g in want.values())
    for name in want:
        torch.testing.assert_close(got[name], want[name].float(), rtol=1e-3, atol=1e-7, msg=name)


def test_objective_is_the_definition_on_its_batch():
    """The training objective (no padding, decoder-only forwards) gives the definition's value."""
    teacher, student = tiny_pair(seed=2)
    hp = {"layers": "all", "batch_size": 2, "seq_len": None, "log_layer_groups": 4, "relations": ["qq", "kk", "vv"],
          "relation_weights": {"qq": 1.0, "kk": 1.0, "vv": 1.0}, "logits_kd_weight": 0.0}
    tokens = np.random.default_rng(0).integers(0, VOCAB, 4000).astype(np.int32)
    ctx = Context(teacher, student, tokens, NATIVE, int(NATIVE * FACTOR), torch.device("cpu"), seed=0)
    objective = linearard.Objective(hp, ctx)
    loss, parts = objective.loss(step=3)
    ids = ctx.windows(3, 0, 2, NATIVE)
    with torch.no_grad(), capture.record() as t_rec:
        teacher(input_ids=ids)
    with torch.no_grad(), capture.record() as s_rec:
        student(input_ids=ids)
    mask = torch.ones(2, NATIVE)
    expected = _materialised_loss(s_rec, t_rec, hp["relations"], hp["relation_weights"], [0, 1], mask)
    torch.testing.assert_close(loss.detach().double(), expected, rtol=1e-4, atol=1e-9)
    assert set(parts) == {"qq", "kk", "vv", "qq_L0", "qq_L1", "kk_L0", "kk_L1", "vv_L0", "vv_L1"}
