"""bertviz renders minibert's attentions as they come out of the model."""

import json
import re

import pytest
import torch

bertviz = pytest.importorskip("bertviz", reason="needs bertviz (pip install 'minibert[notebooks]')")

from minibert import BertConfig, BertForPreTraining  # noqa: E402

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]", "it", "slept", "[SEP]"]


@pytest.fixture(scope="module")
def attentions():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
    )
    model = BertForPreTraining(config).eval()
    ids = torch.arange(1, len(TOKENS) + 1).unsqueeze(0)
    segments = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1]])
    with torch.no_grad():
        return model(ids, token_type_ids=segments, output_attentions=True).attentions


def embedded_params(html):
    """bertviz puts the attention data into the page as a JSON object in its script."""
    match = re.search(r"const params = ", html)
    assert match, "no params object in bertviz output"
    params, _ = json.JSONDecoder().raw_decode(html, match.end())
    return params


def test_head_view_renders_minibert_attentions(attentions):
    html = bertviz.head_view(attentions, TOKENS, sentence_b_start=5, html_action="return")
    page = html.data
    assert "the" in page and "slept" in page
    params = embedded_params(page)
    rendered = params["attention"][0]["attn"]  # layers x heads x T x T
    assert len(rendered) == 2 and len(rendered[0]) == 4
    first = torch.tensor(rendered[1][3])
    torch.testing.assert_close(first, attentions[1][0, 3], rtol=0, atol=1e-6)


def test_model_view_renders_minibert_attentions(attentions):
    html = bertviz.model_view(attentions, TOKENS, html_action="return")
    assert "slept" in html.data
    params = embedded_params(html.data)
    rendered = params["attention"][0]["attn"]
    assert len(rendered) == 2 and len(rendered[0]) == 4 and len(rendered[0][0]) == len(TOKENS)
