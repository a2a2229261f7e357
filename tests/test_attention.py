"""Self-attention: a hand-computed example, a plain-Python reference, padding, eager == SDPA."""

import math

import pytest
import torch

from minibert import BertConfig, BertModel
from minibert.attention import MultiHeadSelfAttention
from minibert.functional import attention_bias_from_padding


def make_attention(hidden=4, heads=2, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=10,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        attention_probs_dropout_prob=dropout,
    )
    attention = MultiHeadSelfAttention(config)
    for linear in (attention.query, attention.key, attention.value, attention.output):
        torch.nn.init.normal_(linear.weight, std=0.5)
        torch.nn.init.normal_(linear.bias, std=0.1)
    return attention.eval()


def set_identity(attention):
    with torch.no_grad():
        for linear in (attention.query, attention.key, attention.value, attention.output):
            linear.weight.copy_(torch.eye(linear.weight.shape[0]))
            linear.bias.zero_()


def test_hand_computed_example_one_head():
    """q = k = v = x with identity projections; scores x x^T / sqrt(2), done on paper."""
    attention = make_attention(hidden=2, heads=1)
    set_identity(attention)
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (1, 3, 2)
    out, weights = attention(x, output_attentions=True)
    # Scores / sqrt(2): row 0 -> [1, 0, 1]/r2, row 1 -> [0, 1, 1]/r2, row 2 -> [1, 1, 2]/r2.
    a = math.exp(1 / math.sqrt(2))  # e^(0.7071) = 2.0281
    b = math.exp(2 / math.sqrt(2))  # e^(1.4142) = 4.1133
    row0 = [a / (2 * a + 1), 1 / (2 * a + 1), a / (2 * a + 1)]  # [0.4011, 0.1978, 0.4011]
    row1 = [1 / (2 * a + 1), a / (2 * a + 1), a / (2 * a + 1)]
    row2 = [a / (2 * a + b), a / (2 * a + b), b / (2 * a + b)]  # [0.2483, 0.2483, 0.5035]
    expected_weights = torch.tensor([[[row0, row1, row2]]])  # (B=1, nh=1, 3, 3)
    torch.testing.assert_close(weights, expected_weights)
    # Output row i = sum_j w_ij v_j with v = x.
    expected_out = torch.tensor(
        [
            [
                [row0[0] + row0[2], row0[1] + row0[2]],
                [row1[0] + row1[2], row1[1] + row1[2]],
                [row2[0] + row2[2], row2[1] + row2[2]],
            ]
        ]
    )
    torch.testing.assert_close(out, expected_out)
    assert row0[0] == pytest.approx(0.4011, abs=1e-4)


def test_hand_computed_example_two_heads_and_padding():
    """Two heads see separate halves of the hidden vector; a padded key gets weight 0."""
    attention = make_attention(hidden=4, heads=2)
    set_identity(attention)
    # Head 0 sees dims (0, 1), head 1 sees dims (2, 3). Token 2 is padding.
    x = torch.tensor([[[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0]]])
    bias = attention_bias_from_padding(torch.tensor([[1, 1, 0]]), torch.float32)
    out, weights = attention(x, bias, output_attentions=True)
    s = 1 / math.sqrt(2)
    # Head 0, query 0: scores [1, 0] * s -> softmax [e^s, 1] / (e^s + 1).
    p = math.exp(s) / (math.exp(s) + 1)
    # Head 1, query 0 = (0, 2): keys (0, 2), (2, 0) -> scores [4, 0] * s.
    r = math.exp(4 * s) / (math.exp(4 * s) + 1)
    torch.testing.assert_close(weights[0, 0, 0], torch.tensor([p, 1 - p, 0.0]))
    torch.testing.assert_close(weights[0, 1, 0], torch.tensor([r, 1 - r, 0.0]))
    # Query 0's output: head 0 mixes (1,0) and (0,1); head 1 mixes (0,2) and (2,0).
    expected = torch.tensor([p, 1 - p, 2 * (1 - r), 2 * r])
    torch.testing.assert_close(out[0, 0], expected)


def reference_attention(attention, x, mask):
    """Plain-Python attention over nested lists: an independent check of the tensor code."""
    nh, hs = attention.num_heads, attention.head_size
    params = {
        name: (getattr(attention, name).weight.tolist(), getattr(attention, name).bias.tolist())
        for name in ("query", "key", "value", "output")
    }

    def linear(vec, name):
        weight, bias = params[name]
        return [
            sum(w * v for w, v in zip(row, vec, strict=True)) + b
            for row, b in zip(weight, bias, strict=True)
        ]

    tokens = x[0].tolist()
    q = [linear(t, "query") for t in tokens]
    k = [linear(t, "key") for t in tokens]
    v = [linear(t, "value") for t in tokens]
    outputs = []
    for i in range(len(tokens)):
        merged = []
        for h in range(nh):
            sl = slice(h * hs, (h + 1) * hs)
            scores = [
                sum(a * b for a, b in zip(q[i][sl], k[j][sl], strict=True)) / math.sqrt(hs)
                if mask[j]
                else -math.inf
                for j in range(len(tokens))
            ]
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            weights = [e / sum(exps) for e in exps]
            merged += [sum(w * v[j][sl][d] for j, w in enumerate(weights)) for d in range(hs)]
        outputs.append(linear(merged, "output"))
    return torch.tensor([outputs])


@pytest.mark.parametrize("output_attentions", [True, False])
def test_matches_a_plain_python_reference(output_attentions):
    attention = make_attention(hidden=6, heads=3, seed=1)
    x = torch.randn(1, 5, 6, generator=torch.Generator().manual_seed(2))
    mask = [1, 1, 1, 1, 0]
    bias = attention_bias_from_padding(torch.tensor([mask]), torch.float32)
    out, _ = attention(x, bias, output_attentions=output_attentions)
    torch.testing.assert_close(out, reference_attention(attention, x, mask), rtol=1e-5, atol=1e-5)


def test_eager_and_sdpa_paths_agree_with_padding_and_head_mask():
    attention = make_attention(hidden=12, heads=3, seed=3)
    x = torch.randn(3, 7, 12, generator=torch.Generator().manual_seed(4))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6])
    bias = attention_bias_from_padding(mask, torch.float32)
    for head_mask in (None, torch.tensor([1.0, 0.0, 0.5])):
        eager, weights = attention(x, bias, head_mask, output_attentions=True)
        fused, none = attention(x, bias, head_mask, output_attentions=False)
        assert none is None and weights.shape == (3, 3, 7, 7)
        torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-6)


def test_eager_and_sdpa_paths_give_the_same_gradients():
    attention = make_attention(hidden=8, heads=2, seed=5).train()  # dropout is 0
    x = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(6))
    bias = attention_bias_from_padding(torch.tensor([[1] * 6, [1] * 3 + [0] * 3]), torch.float32)
    grads = []
    for output_attentions in (True, False):
        attention.zero_grad()
        out, _ = attention(x, bias, output_attentions=output_attentions)
        out[:, :3].pow(2).sum().backward()
        grads.append([p.grad.clone() for p in attention.parameters()])
    # The key bias gradient is zero in exact arithmetic (softmax ignores a constant shift),
    # so compare against the scale of all gradients, not each one's own.
    scale = max(g.abs().max().item() for g in grads[0])
    for eager_grad, fused_grad in zip(*grads, strict=True):
        torch.testing.assert_close(fused_grad, eager_grad, rtol=1e-5, atol=1e-5 * scale)


def test_weights_are_distributions_that_ignore_padding():
    attention = make_attention(hidden=8, heads=2, seed=7)
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    _, weights = attention(
        x, attention_bias_from_padding(mask, torch.float32), output_attentions=True
    )
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 5))
    assert torch.all(weights[1, :, :, 2:] == 0)


def test_a_row_with_no_real_token_stays_finite():
    attention = make_attention(hidden=4, heads=2)
    bias = attention_bias_from_padding(torch.zeros(1, 3, dtype=torch.long), torch.float32)
    for output_attentions in (True, False):
        out, _ = attention(torch.randn(1, 3, 4), bias, output_attentions=output_attentions)
        assert torch.isfinite(out).all()


def test_switching_a_head_off_removes_exactly_its_contribution():
    attention = make_attention(hidden=6, heads=3, seed=8)
    x = torch.randn(2, 4, 6)
    masked, weights = attention(x, head_mask=torch.tensor([1.0, 0.0, 1.0]), output_attentions=True)
    assert torch.all(weights[:, 1] == 0)
    # Same as cutting head 1's columns out of the output projection.
    with torch.no_grad():
        attention.output.weight[:, 2:4] = 0
    cut, _ = attention(x)
    torch.testing.assert_close(masked, cut)


def test_padding_does_not_change_real_tokens_through_the_model():
    torch.manual_seed(9)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
    )
    model = BertModel(config).eval()
    ids = torch.randint(1, 50, (1, 6))
    alone = model(ids)
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    for output_attentions in (False, True):
        padded = model(padded_ids, attention_mask=mask, output_attentions=output_attentions)
        torch.testing.assert_close(
            padded.last_hidden_state[:, :6], alone.last_hidden_state, rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(padded.pooler_output, alone.pooler_output, rtol=1e-5, atol=1e-6)
    # ...and in a batch next to a longer sequence.
    other = torch.randint(1, 50, (1, 10))
    batch = model(
        torch.cat([padded_ids, other]), attention_mask=torch.cat([mask, torch.ones(1, 10)])
    )
    torch.testing.assert_close(
        batch.last_hidden_state[:1, :6], alone.last_hidden_state, rtol=1e-5, atol=1e-6
    )


def test_sdpa_path_runs_under_bf16_autocast_with_a_mask():
    attention = make_attention(hidden=16, heads=4)
    x = torch.randn(2, 8, 16)
    bias = attention_bias_from_padding(torch.tensor([[1] * 8, [1] * 5 + [0] * 3]), torch.float32)
    reference, _ = attention(x, bias)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = attention(x, bias)
    assert low.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits: compare against the scale of the output.
    scale = reference.abs().max().item()
    torch.testing.assert_close(low.float(), reference, rtol=0, atol=0.03 * scale)
