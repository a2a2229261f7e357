"""Lesson 05, masking and losses: BERT's masked-LM corruption by hand, the masked-LM and NSP
losses by hand, and a "spot the bugs" pretraining loop whose check runs the student's fixed
loop on a tiny model and says which bugs remain.

The references are :func:`minibert.functional.mask_tokens`, :func:`~minibert.functional.mlm_loss`
and :func:`~minibert.functional.nsp_loss` (Devlin et al. 2019, Section 3.1, Tasks #1 and #2;
Appendix A.1): what the model itself runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from minibert.constants import IGNORE_INDEX
from minibert.lessons.checking import CheckFailed, Mistake, NotFilledIn, Report, exercise

# --------------------------------------------------------------------------------------------
# Exercise 1: BERT's masking by hand
# --------------------------------------------------------------------------------------------


def solution_mask_tokens(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    # 1. select 15% of the positions that are not special (or padding)
    selected = (torch.rand(input_ids.shape) < 0.15) & ~special_tokens_mask  # (B, T)
    # 2. of those, 80% -> [MASK], 10% -> a random (non-special) token, 10% unchanged
    draw = torch.rand(input_ids.shape)  # (B, T) one draw per position
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    random_ids = replacement_ids[torch.randint(len(replacement_ids), input_ids.shape)]  # (B, T)
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    # 3. the label is the original token where selected, -100 (ignored by the loss) elsewhere
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


def _mask_specials_too(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    selected = torch.rand(input_ids.shape) < 0.15  # every position may be chosen
    draw = torch.rand(input_ids.shape)
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    random_ids = replacement_ids[torch.randint(len(replacement_ids), input_ids.shape)]
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


def _all_to_mask(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    selected = (torch.rand(input_ids.shape) < 0.15) & ~special_tokens_mask
    masked = input_ids.clone()
    masked[selected] = mask_token_id  # every selected token becomes [MASK]: no 10% / 10%
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


def _labels_everywhere(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    selected = (torch.rand(input_ids.shape) < 0.15) & ~special_tokens_mask
    draw = torch.rand(input_ids.shape)
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    random_ids = replacement_ids[torch.randint(len(replacement_ids), input_ids.shape)]
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = input_ids.clone()  # the original ids everywhere
    return masked, labels


def _random_from_whole_vocab(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    vocab_size = int(replacement_ids.max()) + 1
    selected = (torch.rand(input_ids.shape) < 0.15) & ~special_tokens_mask
    draw = torch.rand(input_ids.shape)
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape)  # may draw [CLS], [SEP], [PAD] ...
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


def _split_applied_to_all(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    selected = (torch.rand(input_ids.shape) < 0.15) & ~special_tokens_mask
    draw = torch.rand(input_ids.shape)
    to_mask = (draw < 0.8) & ~special_tokens_mask  # forgot "& selected"
    to_random = (draw >= 0.8) & (draw < 0.9) & ~special_tokens_mask
    random_ids = replacement_ids[torch.randint(len(replacement_ids), input_ids.shape)]
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


@dataclass
class MaskingStats:
    """What a masking function did to a batch, counted from (original, masked, labels)."""

    selectable: int
    selected: int
    mask: int
    random: int
    kept: int
    specials_touched: int  # special/padding positions changed or labelled
    changed_unlabelled: int  # input changed where the label is -100
    labels_wrong: int  # labelled positions whose label is not the original id
    random_special: int  # random replacements that are special ids

    @property
    def rate(self) -> float:
        return self.selected / max(self.selectable, 1)

    def share(self, kind: str) -> float:
        return getattr(self, kind) / max(self.selected, 1)


def masking_stats(
    original: torch.Tensor,
    masked: torch.Tensor,
    labels: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_token_id: int,
    special_ids: torch.Tensor,
) -> MaskingStats:
    """Count selected / [MASK] / random / kept positions and the ways a masking can be wrong.

    A random replacement that happens to draw the original token counts as kept here (the
    output cannot tell them apart); with a vocabulary of hundreds that is a tiny share.
    """
    labelled = labels != IGNORE_INDEX  # (B, T)
    normal = labelled & ~special_tokens_mask
    changed = masked != original
    is_mask = normal & (masked == mask_token_id)
    is_random = normal & changed & (masked != mask_token_id)
    return MaskingStats(
        selectable=int((~special_tokens_mask).sum()),
        selected=int(normal.sum()),
        mask=int(is_mask.sum()),
        random=int(is_random.sum()),
        kept=int((normal & ~changed).sum()),
        specials_touched=int((special_tokens_mask & (labelled | changed)).sum()),
        changed_unlabelled=int((~labelled & changed & ~special_tokens_mask).sum()),
        labels_wrong=int((labelled & (labels != original)).sum()),
        random_special=int((is_random & torch.isin(masked, special_ids)).sum()),
    )


def masking_batch(
    batch_size: int, width: int, vocab_size: int, n_special: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch laid out like BERT's: [CLS] words [SEP] then padding (ids 0..n_special-1
    are the special tokens: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK]).

    Returns (input_ids (B, T), special_tokens_mask (B, T) bool)."""
    ids = torch.randint(n_special, vocab_size, (batch_size, width), generator=generator)
    lengths = torch.randint(width // 2, width + 1, (batch_size,), generator=generator)  # (B,)
    position = torch.arange(width)[None, :]  # (1, T)
    ids[:, 0] = 2  # [CLS]
    ids[torch.arange(batch_size), lengths - 1] = 3  # [SEP] at the end of each row
    ids[position >= lengths[:, None]] = 0  # [PAD] after it
    return ids, ids < n_special


_MASKING_WHY = {
    "masking specials or padding": "only real tokens are selected: [CLS], [SEP] and [PAD] carry "
    "no word to recover (and padding is not even attended to). Select with "
    "`(torch.rand(shape) < 0.15) & ~special_tokens_mask`.",
    "15% replaced by [MASK] (no 10% random / 10% kept)": "BERT replaces only 80% of the selected "
    "tokens by [MASK]; 10% become a random token and 10% stay. Otherwise the model never has to "
    "predict a word it can see, and [MASK] (which never appears when fine-tuning) is the only "
    "place it ever predicts.",
    "labels left as ids everywhere": "the loss must count only the selected positions: set the "
    "label to -100 (ignored by cross_entropy) wherever a token was not selected. Otherwise 85% of "
    "the loss is 'copy the input', which is easy and teaches nothing.",
    "random ids drawn from the whole vocabulary, specials included": "a random replacement "
    "should look like a word: draw it from `replacement_ids` (the non-special ids), never "
    "[CLS], [SEP], [PAD] or [MASK]; a random [SEP] would fake a segment boundary.",
    "80/10/10 applied to all tokens instead of the selected": "the 80/10/10 draw decides what "
    "happens to a *selected* token; combine it with `selected` (`selected & (draw < 0.8)`), or "
    "most of the input becomes [MASK] while only 15% of positions carry a label.",
}


@exercise(
    "bert_masking",
    solution=solution_mask_tokens,
    mistakes={
        "masking specials or padding": Mistake(
            _mask_specials_too, _MASKING_WHY["masking specials or padding"]
        ),
        "labels left as ids everywhere": Mistake(
            _labels_everywhere, _MASKING_WHY["labels left as ids everywhere"]
        ),
        "80/10/10 applied to all tokens instead of the selected": Mistake(
            _split_applied_to_all,
            _MASKING_WHY["80/10/10 applied to all tokens instead of the selected"],
        ),
        "15% replaced by [MASK] (no 10% random / 10% kept)": Mistake(
            _all_to_mask, _MASKING_WHY["15% replaced by [MASK] (no 10% random / 10% kept)"]
        ),
        "random ids drawn from the whole vocabulary, specials included": Mistake(
            _random_from_whole_vocab,
            _MASKING_WHY["random ids drawn from the whole vocabulary, specials included"],
        ),
    },
)
def check_bert_masking(fn: Callable[..., Any], report: Report) -> None:
    """A large random batch ([CLS] ... [SEP] + padding): statistics of what was selected and
    how; then a small vocabulary, where random replacements would hit special ids often."""
    cases = [("1,000-token vocabulary", 1000), ("12-token vocabulary (7 words)", 12)]
    n_special, mask_id = 5, 4
    for case, vocab_size in cases:
        ids, special = masking_batch(128, 96, vocab_size, n_special, report.generator)
        replacement_ids = torch.arange(n_special, vocab_size)
        torch.manual_seed(report.seed)  # the student's torch.rand draws are reproducible
        got = report.call(ids, special, mask_token_id=mask_id, replacement_ids=replacement_ids)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            report.fail(f"return two tensors (masked_input_ids, labels); got {type(got).__name__}")
        masked, labels = got
        report.shape("masked_input_ids", masked, ids, case=case)
        report.shape("labels", labels, ids, case=case)
        stats = masking_stats(ids, masked, labels, special, mask_id, torch.arange(n_special))
        _judge_masking(stats, report, case, small_vocab=vocab_size < 100)
        report.passed(case)
        if vocab_size >= 100:
            shown = stats
    report.note(
        f"selected {shown.rate:.1%} of the real tokens; [MASK] / random / kept: "
        f"{shown.share('mask'):.0%} / {shown.share('random'):.0%} / {shown.share('kept'):.0%}"
    )


def _judge_masking(stats: MaskingStats, report: Report, case: str, small_vocab: bool) -> None:
    if stats.selected + stats.specials_touched > 0.5 * stats.selectable:
        report.fail(
            f"labels are set at {stats.selected + stats.specials_touched} of "
            f"{stats.selectable} real positions: the label should be -100 except where a token "
            "was selected (about 15%).",
            mistake="labels left as ids everywhere",
            case=case,
        )
    if stats.specials_touched:
        report.fail(
            f"{stats.specials_touched} special or padding positions were selected or changed; "
            "expected none.",
            mistake="masking specials or padding",
            case=case,
        )
    if stats.labels_wrong:
        report.fail(
            f"{stats.labels_wrong} labels are not the original token id (labels hold what the "
            "model must recover: the token *before* masking).",
            case=case,
        )
    if stats.changed_unlabelled > 0.01 * stats.selectable:
        report.fail(
            f"the input changed at {stats.changed_unlabelled} positions that carry no label "
            f"(label -100); only the {stats.selected} selected positions may change.",
            mistake="80/10/10 applied to all tokens instead of the selected",
            case=case,
        )
    if not 0.13 <= stats.rate <= 0.17:
        report.fail(
            f"selected {stats.rate:.1%} of the real tokens; expected about 15% "
            f"({stats.selected} of {stats.selectable}).",
            case=case,
        )
    if stats.share("mask") > 0.95:
        report.fail(
            f"{stats.share('mask'):.0%} of the selected tokens became [MASK]; expected about 80%, "
            "with about 10% random and 10% unchanged.",
            mistake="15% replaced by [MASK] (no 10% random / 10% kept)",
            case=case,
        )
    if small_vocab and stats.random_special:
        report.fail(
            f"{stats.random_special} of {stats.random} random replacements are special ids "
            "([PAD], [CLS], [SEP], ...).",
            mistake="random ids drawn from the whole vocabulary, specials included",
            case=case,
        )
    if small_vocab:
        return  # with 7 words a random draw often equals the original: shares are not exact
    for kind, want, tolerance in (("mask", 0.8, 0.05), ("random", 0.1, 0.04), ("kept", 0.1, 0.04)):
        if abs(stats.share(kind) - want) > tolerance:
            report.fail(
                f"of the {stats.selected} selected tokens, {stats.share(kind):.1%} are {kind}; "
                f"expected about {want:.0%} ([MASK] / random / kept: "
                f"{stats.share('mask'):.1%} / {stats.share('random'):.1%} / "
                f"{stats.share('kept'):.1%}).",
                case=case,
            )


# --------------------------------------------------------------------------------------------
# Exercise 2: the masked-LM loss by hand
# --------------------------------------------------------------------------------------------


def solution_mlm_loss(logits, labels):
    log_probs = logits.log_softmax(dim=-1)  # (B, T, V) over the vocabulary
    selected = labels != -100  # (B, T) the positions to predict
    targets = labels[selected]  # (N,) their original ids
    picked = log_probs[selected].gather(1, targets[:, None]).squeeze(1)  # (N,) log P(x_i | ...)
    return -picked.mean()  # the mean over the N selected positions only


def _mlm_wrong_axis(logits, labels):
    log_probs = logits.log_softmax(dim=1)  # over the positions, not the vocabulary
    selected = labels != -100
    picked = log_probs[selected].gather(1, labels[selected][:, None]).squeeze(1)
    return -picked.mean()


def _mlm_mean_over_all(logits, labels):
    log_probs = logits.log_softmax(dim=-1)
    selected = labels != -100
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)  # (B, T)
    return -(picked * selected).sum() / labels.numel()  # divided by every position


def _mlm_forgot_ignore(logits, labels):
    log_probs = logits.log_softmax(dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)  # -100 -> id 0
    return -picked.mean()


def _mlm_probabilities(logits, labels):
    probs = logits.softmax(dim=-1)
    selected = labels != -100
    picked = probs[selected].gather(1, labels[selected][:, None]).squeeze(1)
    return -picked.mean()


def _mlm_raw_logit(logits, labels):
    selected = labels != -100
    picked = logits[selected].gather(1, labels[selected][:, None]).squeeze(1)
    return -picked.mean()


_MLM_WHY = {
    "softmax over the wrong axis": "the distribution is over the vocabulary, the last axis: "
    "`log_softmax(dim=-1)`. Over dim=1 each *position* competes with the others.",
    "mean over all positions": "divide by the number of selected positions, not by B * T: "
    "with 15% selected the loss comes out about 7 times too small, and it changes with padding.",
    "forgot the -100 labels": "-100 means 'no label here'; those positions must be left out of "
    "the loss (`labels != -100`), not scored as if the answer were token 0.",
    "probabilities, not log-probabilities": "the loss is -log P, not -P: take log_softmax. "
    "-P is bounded in [-1, 0] and gives tiny gradients to confident wrong answers.",
    "negative raw logit": "a logit is not a log-probability until it is normalised over the "
    "vocabulary (log_softmax); -logit can be lowered forever by making every logit large.",
}


@exercise(
    "mlm_loss",
    solution=solution_mlm_loss,
    mistakes={
        name: Mistake(fn, _MLM_WHY[name])
        for name, fn in [
            ("softmax over the wrong axis", _mlm_wrong_axis),
            ("mean over all positions", _mlm_mean_over_all),
            ("forgot the -100 labels", _mlm_forgot_ignore),
            ("probabilities, not log-probabilities", _mlm_probabilities),
            ("negative raw logit", _mlm_raw_logit),
        ]
    },
)
def check_mlm_loss(fn: Callable[..., Any], report: Report) -> None:
    """Random logits (B, T, V) with about 15% of positions labelled; a single labelled position;
    large logits (a softmax that overflows)."""
    g = report.generator
    for case, (b, t, v), scale in [
        ("(2, 6, 11), 15% labelled", (2, 6, 11), 2.0),
        ("(3, 8, 50), 15% labelled", (3, 8, 50), 3.0),
        ("large logits (|x| ~ 1000)", (2, 5, 7), 1000.0),
    ]:
        logits = torch.randn(b, t, v, generator=g) * scale
        labels = torch.randint(v, (b, t), generator=g)
        keep = torch.rand(b, t, generator=g) < 0.15
        keep[0, 1] = True  # at least one labelled position
        labels = labels.masked_fill(~keep, IGNORE_INDEX)
        got = report.expect(logits, labels, case=case)
        if _is_float_tensor(got) and got.dim() != 0:
            report.fail("return a single number (a 0-dim tensor), the mean over the positions")
    logits = torch.randn(1, 4, 9, generator=g)
    labels = torch.full((1, 4), IGNORE_INDEX)
    labels[0, 2] = 5
    report.expect(logits, labels, case="one labelled position")


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


# --------------------------------------------------------------------------------------------
# Exercise 3: the next-sentence-prediction loss by hand
# --------------------------------------------------------------------------------------------


def solution_nsp_loss(seq_relationship_logits, next_sentence_label):
    log_probs = seq_relationship_logits.log_softmax(dim=-1)  # (B, 2) over {IsNext, NotNext}
    picked = log_probs.gather(1, next_sentence_label[:, None]).squeeze(1)  # (B,)
    return -picked.mean()


def _nsp_wrong_axis(seq_relationship_logits, next_sentence_label):
    log_probs = seq_relationship_logits.log_softmax(dim=0)  # over the batch
    return -log_probs.gather(1, next_sentence_label[:, None]).squeeze(1).mean()


def _nsp_sum(seq_relationship_logits, next_sentence_label):
    log_probs = seq_relationship_logits.log_softmax(dim=-1)
    return -log_probs.gather(1, next_sentence_label[:, None]).squeeze(1).sum()


def _nsp_sigmoid_one_logit(seq_relationship_logits, next_sentence_label):
    return F.binary_cross_entropy_with_logits(
        seq_relationship_logits[:, 1], next_sentence_label.float()
    )


@exercise(
    "nsp_loss",
    solution=solution_nsp_loss,
    mistakes={
        "softmax over the batch axis": Mistake(
            _nsp_wrong_axis,
            "each example chooses between its two classes: log_softmax over dim=-1 (size 2), "
            "not over the batch.",
        ),
        "sum instead of mean": Mistake(
            _nsp_sum,
            "BERT averages over the batch (Appendix A.2: the *mean* NSP likelihood); a sum "
            "grows with the batch size and changes the effective learning rate.",
        ),
        "sigmoid on one logit": Mistake(
            _nsp_sigmoid_one_logit,
            "BERT's NSP head has two logits and a softmax over them; a sigmoid on one of them "
            "ignores the other logit (they only agree if logit 0 is always 0).",
        ),
    },
)
def check_nsp_loss(fn: Callable[..., Any], report: Report) -> None:
    """Random (B, 2) logits and 0/1 labels; a batch of one."""
    g = report.generator
    for case, batch in [("B = 8", 8), ("B = 3", 3), ("B = 1", 1)]:
        logits = torch.randn(batch, 2, generator=g) * 2
        labels = torch.randint(2, (batch,), generator=g)
        report.expect(logits, labels, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 4: spot the bugs in a pretraining loop
# --------------------------------------------------------------------------------------------

# The bugs of the loop in the notebook, by the number of the comment that marks each.
BUGS: dict[int, str] = {
    1: "transformers.AdamW (removed in transformers 5)",
    2: "a fine-tuning learning rate for pretraining",
    3: "padding every text to 512",
    4: "per-item (1, T) tensors stacked into (B, 1, T)",
    5: "unmasked positions not set to -100",
    6: "no token ever actually masked",
    7: "model.eval() inside the training step",
    8: "the loss computed under torch.no_grad()",
    9: "token ids used as position indices",
    10: "the loss as a negative raw logit instead of cross-entropy",
    11: "'validation loss' measured on the last training batch",
}

HINTS: dict[int, str] = {
    1: "transformers 5 removed its own AdamW (deprecated since 4.x). PyTorch has one: "
    "torch.optim.AdamW.",
    2: "5e-5 is the fine-tuning learning rate from BERT's paper (2e-5 to 5e-5), for weights that "
    "are already pretrained. A model trained from scratch, and a tiny one, wants about 1e-3.",
    3: "padding='max_length', max_length=512 makes every row 512 long, however short the text: "
    "most of the compute goes to [PAD]. Pad each batch to its own longest text (padding=True).",
    4: "tokenizer(text, return_tensors='pt') gives (1, T) per text; stacking B of them gives "
    "(B, 1, T). Tokenize the list of texts in one call, which returns (B, T).",
    5: "labels = input_ids.clone() asks the model to predict every token, most of which it can "
    "see. Set the label to -100 wherever the token was not chosen.",
    6: "`masked` is built and then never used: the model is given `input_ids`, so it sees every "
    "answer.",
    7: "model.eval() turns dropout off and is for evaluation; the training step needs "
    "model.train().",
    8: "under torch.no_grad() no graph is recorded, so loss.backward() has nothing to "
    "differentiate. Compute the training loss with gradients on.",
    9: "masked_positions wants *positions* 0..T-1 of the tokens to predict, not token ids. "
    "positions_from_labels(labels) gives them (or pass no masked_positions and get (B, T, V)).",
    10: "-logit is not a loss: it can go down forever by making every logit large. The masked-LM "
    "loss is the cross-entropy over the vocabulary (exercise 2; F.cross_entropy with "
    "ignore_index=-100).",
    11: "the last training loss is measured on a batch the model was just trained on. Evaluate "
    "on valid_texts, with model.eval() and torch.no_grad().",
}


def hint(number: int) -> None:
    """Print the hint for the bug marked ``[number]`` in the spot-the-bugs loop."""
    if number not in HINTS:
        raise KeyError(f"the loop has hints 1 to {len(HINTS)}, not {number}")
    print(f"[{number}] {BUGS[number]}: {HINTS[number]}")


def solution_pretraining_loop(model, tokenizer, train_texts, valid_texts, steps=20, batch_size=8):
    import torch
    import torch.nn.functional as F

    from minibert.functional import positions_from_labels

    specials = torch.tensor(tokenizer.all_special_ids)

    def make_batch(texts):
        batch = tokenizer(  # one call: (B, T), padded to the longest text of this batch
            texts, padding=True, max_length=128, truncation=True, return_tensors="pt"
        )
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        chosen = (torch.rand(input_ids.shape) < 0.15) & ~torch.isin(input_ids, specials)
        labels = input_ids.clone()
        labels[~chosen] = -100  # only the chosen tokens are predicted
        masked = input_ids.clone()
        masked[chosen] = tokenizer.mask_token_id
        return masked, attention_mask, labels

    def loss_of(masked, attention_mask, labels):
        positions, _ = positions_from_labels(labels)  # (B, M) where the labels are
        out = model(masked, attention_mask=attention_mask, masked_positions=positions)
        targets = labels.gather(1, positions)  # (B, M), -100 where a row has fewer
        logits = out.logits  # (B, M, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_losses, seen_labels = [], []
    model.train()
    for step in range(steps):
        start = step * batch_size % len(train_texts)
        masked, attention_mask, labels = make_batch(train_texts[start : start + batch_size])
        loss = loss_of(masked, attention_mask, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_losses.append(loss.item())
        seen_labels.append(labels)
    model.eval()
    with torch.no_grad():
        valid_loss = loss_of(*make_batch(valid_texts[:batch_size])).item()
    model.train()
    return {"train_losses": train_losses, "valid_loss": valid_loss, "labels": seen_labels}


def buggy_pretraining_loop(
    model, tokenizer, train_texts, valid_texts, steps=20, batch_size=8, *, bugs=frozenset(BUGS)
):
    """The notebook's loop with the bugs in ``bugs`` (numbers of :data:`BUGS`) and the others
    fixed: each single-bug version is a named mistake of the exercise, and all of them together
    behave as the notebook's cell does (tests/test_lessons_05.py holds the two to that)."""
    import torch
    import torch.nn.functional as F

    from minibert.functional import positions_from_labels

    specials = torch.tensor(tokenizer.all_special_ids)
    if 1 in bugs:
        import transformers

        optimizer_class = transformers.AdamW  # AttributeError in transformers 5
    else:
        optimizer_class = torch.optim.AdamW
    optimizer = optimizer_class(model.parameters(), lr=5e-5 if 2 in bugs else 1e-3)

    def make_batch(texts):
        padding = "max_length" if 3 in bugs else True
        if 4 in bugs:
            items = [  # (1, T) each; padded to one length so that they stack
                tokenizer(
                    t,
                    padding="max_length",
                    max_length=512 if 3 in bugs else 128,
                    truncation=True,
                    return_tensors="pt",
                )
                for t in texts
            ]
            input_ids = torch.stack([item["input_ids"] for item in items])  # (B, 1, T)
            attention_mask = torch.stack([item["attention_mask"] for item in items])
        else:
            batch = tokenizer(
                texts,
                padding=padding,
                max_length=512 if 3 in bugs else 128,
                truncation=True,
                return_tensors="pt",
            )
            input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        chosen = (torch.rand(input_ids.shape) < 0.15) & ~torch.isin(input_ids, specials)
        labels = input_ids.clone()
        if 5 not in bugs:
            labels[~chosen] = -100
        masked = input_ids.clone()
        masked[chosen] = tokenizer.mask_token_id
        return (input_ids if 6 in bugs else masked), attention_mask, labels

    def loss_of(inputs, attention_mask, labels):
        positions = labels if 9 in bugs else positions_from_labels(labels)[0]
        out = model(inputs, attention_mask=attention_mask, masked_positions=positions)
        targets = labels.gather(1, positions) if 9 not in bugs else labels
        if 10 in bugs:
            scored = targets != -100
            return -out.logits[scored].gather(1, targets[scored][:, None]).mean()
        return F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(), ignore_index=-100)

    train_losses, seen_labels = [], []
    for step in range(steps):
        start = step * batch_size % len(train_texts)
        batch = make_batch(train_texts[start : start + batch_size])
        if 7 in bugs:
            model.eval()
        if 8 in bugs:
            with torch.no_grad():
                loss = loss_of(*batch)
        else:
            loss = loss_of(*batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_losses.append(loss.item())
        seen_labels.append(batch[2])
    if 11 in bugs:
        valid_loss = train_losses[-1]
    else:
        model.eval()
        with torch.no_grad():
            valid_loss = loss_of(*make_batch(valid_texts[:batch_size])).item()
        model.train()
    return {"train_losses": train_losses, "valid_loss": valid_loss, "labels": seen_labels}


def _single_bug(number: int) -> Callable[..., Any]:
    variant = functools.partial(buggy_pretraining_loop, bugs=frozenset({number}))
    variant.__name__ = f"loop_with_bug_{number}"  # type: ignore[attr-defined]
    return variant


@dataclass
class _Call:
    grad_enabled: bool
    training: bool
    input_ids: torch.Tensor
    masked_positions: torch.Tensor | None
    logits: torch.Tensor | None = None


@dataclass
class _Spy:
    """Watches the model's forward calls and the optimizer's steps while the loop runs."""

    initial: dict[str, torch.Tensor] = field(default_factory=dict)  # the weights before
    calls: list[_Call] = field(default_factory=list)
    optimizers: list[tuple[str, str, float]] = field(default_factory=list)  # module, class, lr


@functools.lru_cache(maxsize=1)
def loop_check_data() -> tuple[Any, list[str], list[str]]:
    """(tokenizer, train texts, valid texts) for the loop check: a 600-entry WordPiece trained
    on gensim's Lee news corpus (real text, offline), and short sentences from it."""
    from minibert.data.corpora import load_corpus
    from minibert.data.tokenizer import train_wordpiece

    documents = [doc.text for doc in load_corpus("lee-news")]
    tokenizer = train_wordpiece(documents[:80], vocab_size=600)
    sentences = [
        " ".join(s.split()[:30])
        for doc in documents[:80]
        for s in doc.split(". ")
        if len(s.split()) >= 8
    ]
    return tokenizer, sentences[:160], sentences[160:200]


def loop_check_model(vocab_size: int, seed: int = 0) -> Any:
    """A small BertForMaskedLM for the loop check (1 layer, hidden 64, positions up to 128)."""
    from minibert.config import BertConfig
    from minibert.heads import BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig.preset(
        "tiny",
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=1,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    return BertForMaskedLM(config)


LOOP_STEPS = 16
LOOP_BATCH = 8
# Mean of the last 3 training losses below the mean of the first 3 by this much. Measured on
# this check's model and data (2 seeds): lr 1e-3 falls 0.22-0.28 nats in 16 steps, 3e-3
# 0.32-0.45, 5e-4 0.13-0.16, 1e-4 0.01-0.04, 5e-5 -0.01-0.02.
FALL_NATS = 0.1


def run_loop_under_spy(fn: Callable[..., Any], seed: int = 0) -> tuple[_Spy, Any, Any, Any]:
    """Run the student's loop on the check's tiny model: (spy, result or None, the exception or
    None, the model)."""
    tokenizer, train, valid = loop_check_data()
    model = loop_check_model(len(tokenizer), seed)
    spy = _Spy(initial={k: v.detach().clone() for k, v in model.state_dict().items()})

    def before(module, args, kwargs):
        input_ids = args[0] if args else kwargs.get("input_ids")
        positions = kwargs.get("masked_positions")  # the loops pass it by name
        spy.calls.append(
            _Call(
                grad_enabled=torch.is_grad_enabled(),
                training=module.training,
                input_ids=input_ids.detach().clone() if torch.is_tensor(input_ids) else None,
                masked_positions=positions.detach().clone() if torch.is_tensor(positions) else None,
            )
        )

    def after(module, args, kwargs, output):
        if spy.calls and spy.calls[-1].logits is None and len(spy.calls) == 1:
            spy.calls[-1].logits = output.logits.detach().clone()

    def on_step(optimizer, args, kwargs):
        lr = max(float(group.get("lr", 0.0)) for group in optimizer.param_groups)
        spy.optimizers.append((type(optimizer).__module__, type(optimizer).__name__, lr))

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handles = [
        model.register_forward_pre_hook(before, with_kwargs=True),
        model.register_forward_hook(after, with_kwargs=True),
        register_optimizer_step_pre_hook(on_step),
    ]
    torch.manual_seed(seed)
    result, error = None, None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    try:
        result = fn(model, tokenizer, train, valid, steps=LOOP_STEPS, batch_size=LOOP_BATCH)
    except NotImplementedError:
        raise NotFilledIn() from None
    except Exception as caught:  # the loop's own failure is what the check explains
        error = caught
    finally:
        torch.set_num_threads(threads)
        for handle in handles:
            handle.remove()
    return spy, result, error, model


def diagnose_loop(fn: Callable[..., Any], seed: int = 0) -> tuple[list[int], list[str], Any]:
    """Run the loop and find the named bugs: (bug numbers found, other problems, result)."""
    tokenizer, _, _ = loop_check_data()
    spy, result, error, model = run_loop_under_spy(fn, seed)
    found: set[int] = set()
    problems: list[str] = []
    message = f"{type(error).__name__}: {error}" if error is not None else ""
    if error is not None and "AdamW" in message:
        found.add(1)
    for _module, _name, lr in spy.optimizers[:1]:
        if lr <= 5e-5:
            found.add(2)
    training = spy.calls[:LOOP_STEPS]
    for call in training:
        ids = call.input_ids
        if ids is None:
            continue
        if ids.dim() != 2:
            found.add(4)
        if ids.shape[-1] > 128:  # the check's sentences are at most ~45 tokens
            found.add(3)
        if not call.grad_enabled:
            found.add(8)
        if not call.training:
            found.add(7)
        positions = call.masked_positions
        if positions is not None and ids.dim() == 2:
            width = ids.shape[-1]
            same_as_ids = positions.shape == ids.shape and bool((positions == ids).all())
            out_of_range = positions.numel() > 0 and (
                int(positions.max()) >= width or int(positions.min()) < 0
            )
            if same_as_ids or out_of_range:
                found.add(9)
    mask_id = tokenizer.mask_token_id
    inputs = [c.input_ids for c in training if c.input_ids is not None]
    if inputs and not any(bool((ids == mask_id).any()) for ids in inputs):
        found.add(6)
    if error is not None and "stack expects each tensor" in message:
        found.add(4)
    if error is not None and "does not require grad" in message:
        found.add(8)
    if error is not None and not found:
        problems.append(f"the loop raised {message}")
    if result is not None:
        found |= _judge_result(result, spy, tokenizer, problems)
        changed = any(not torch.equal(spy.initial[k], v) for k, v in model.state_dict().items())
        if not changed:
            problems.append("no parameter changed: nothing was trained (optimizer.step()?)")
    return sorted(found), problems, result


def _judge_result(result: Any, spy: _Spy, tokenizer: Any, problems: list[str]) -> set[int]:
    found: set[int] = set()
    if not isinstance(result, dict) or not {"train_losses", "valid_loss", "labels"} <= set(result):
        problems.append(
            "return a dict with train_losses (one float per step), valid_loss (a float) and "
            "labels (the (B, T) labels of each step)"
        )
        return found
    losses = [float(x) for x in result["train_losses"]]
    if len(losses) != LOOP_STEPS:
        problems.append(f"train_losses has {len(losses)} entries for {LOOP_STEPS} steps")
        return found
    pad = tokenizer.pad_token_id
    training = spy.calls[:LOOP_STEPS]
    for call, labels in zip(training, result["labels"], strict=False):
        if call.input_ids is None or labels.shape != call.input_ids.shape:
            continue
        real = call.input_ids != pad
        if float((labels != IGNORE_INDEX)[real].float().mean()) > 0.5:
            found.add(5)
            break
    first = training[0] if training else None
    if first is not None and first.logits is not None and result["labels"]:
        labels = result["labels"][0]
        targets = labels
        if first.masked_positions is not None and 9 not in found:
            targets = labels.gather(1, first.masked_positions)
        if targets.shape == first.logits.shape[:-1]:
            logits = first.logits.float()
            cross_entropy = float(
                F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
            )
            scored = targets != IGNORE_INDEX
            raw = float(-logits[scored].gather(1, targets[scored][:, None]).mean())
            vocab = logits.shape[-1]
            if abs(losses[0] - raw) < 1e-3 or losses[0] < 0.5 * math.log(vocab):
                found.add(10)
            elif abs(losses[0] - cross_entropy) > 1e-3 * max(1.0, abs(cross_entropy)):
                problems.append(
                    f"the first training loss is {losses[0]:.4f}, but the cross-entropy of the "
                    f"model's logits at the labelled positions is {cross_entropy:.4f}"
                )
    valid_calls = spy.calls[LOOP_STEPS:]
    valid_loss = float(result["valid_loss"])
    if not valid_calls or (
        training
        and training[-1].input_ids is not None
        and any(
            c.input_ids is not None
            and c.input_ids.shape == training[-1].input_ids.shape
            and bool((c.input_ids == training[-1].input_ids).all())
            for c in valid_calls
        )
    ):
        found.add(11)
    if not math.isfinite(valid_loss):
        problems.append(f"valid_loss is {valid_loss}")
    if not found and not problems:
        start, end = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
        if not end < start - FALL_NATS:
            problems.append(
                f"the loss did not fall: {start:.3f} (mean of the first 3 steps) -> {end:.3f} "
                f"(last 3); expected a fall of more than {FALL_NATS} nats in {LOOP_STEPS} steps. "
                "Is the learning rate large enough? A small model trained from scratch wants "
                "about 1e-3."
            )
    return found


def loop_report(found: list[int], problems: list[str]) -> str:
    """The bugs found, in the order of the loop's numbered comments, and other problems."""
    lines = [f"bug [{n}] still there: {BUGS[n]}" for n in found]
    lines += problems
    return "\n".join(lines)


@exercise(
    "pretraining_loop",
    solution=solution_pretraining_loop,
    mistakes={BUGS[n]: Mistake(_single_bug(n), HINTS[n]) for n in BUGS},
)
def check_pretraining_loop(fn: Callable[..., Any], report: Report) -> None:
    """Runs your loop for 16 steps (batch 8) on a 1-layer model with a 600-word vocabulary,
    watching the model's inputs (shape, [MASK]s, positions, train mode, gradients), the
    optimizer (class, learning rate), the labels and losses you return; then the loss must
    fall."""
    found, problems, result = diagnose_loop(fn, report.seed)
    if found or problems:
        text = loop_report(found, problems)
        if found:
            text += (
                "\n(a loop that stops with an error hides the bugs after it: fix, run again)"
                if any(n in found for n in (1, 3, 4, 8, 9))
                else ""
            )
        raise CheckFailed(text, mistake=BUGS[found[0]] if found else None)
    losses = result["train_losses"]
    report.passed(f"{LOOP_STEPS} steps, no named bug found")
    report.passed(f"loss fell from {losses[0]:.2f} to {losses[-1]:.2f}")
    report.note(f"validation loss {float(result['valid_loss']):.2f} on held-out sentences")


# --------------------------------------------------------------------------------------------
# Helpers the notebook calls
# --------------------------------------------------------------------------------------------


def special_tokens_mask(tokenizer: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: True at [CLS], [SEP], [PAD], [UNK], [MASK] (never selected for masking)."""
    return torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))


def replacement_ids(tokenizer: Any) -> torch.Tensor:
    """The non-special ids (1-D long): what a random replacement is drawn from."""
    special = set(tokenizer.all_special_ids)
    return torch.tensor([i for i in range(len(tokenizer)) if i not in special])


def masking_rows(
    tokenizer: Any, original: torch.Tensor, masked: torch.Tensor, labels: torch.Tensor
) -> list[dict[str, str]]:
    """One row of a batch as a list of {token, input, label, kind}: what each position was,
    what the model sees, what it must predict, and how it was corrupted."""
    rows = []
    for o, m, y in zip(original.tolist(), masked.tolist(), labels.tolist(), strict=True):
        if o == tokenizer.pad_token_id:
            break
        kind = ""
        if y != IGNORE_INDEX:
            kind = "[MASK]" if m == tokenizer.mask_token_id else ("kept" if m == o else "random")
        token, seen = tokenizer.convert_ids_to_tokens([o, m])
        label = tokenizer.convert_ids_to_tokens(y) if y != IGNORE_INDEX else "-100"
        rows.append({"token": token, "input": seen, "label": label, "kind": kind})
    return rows


def print_masking(rows: list[dict[str, str]], limit: int = 40) -> None:
    """Print :func:`masking_rows` as aligned columns (selected positions marked with *)."""
    print(f"{'':2}{'original':>14} {'model sees':>14} {'label':>14}  kind")
    for row in rows[:limit]:
        star = "* " if row["kind"] else "  "
        print(f"{star}{row['token']:>14} {row['input']:>14} {row['label']:>14}  {row['kind']}")


def kind_accuracy(loaded: Any, texts: list[str], seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Masked-token accuracy of ``loaded`` split by what the input showed at the selected
    position ([MASK] / random / kept), summed over ``texts`` and masking ``seeds``
    (:func:`minibert.inspect.masking_lab` per text). Returns counts, accuracies and the shares."""
    from minibert.inspect import masking_lab

    hits = {"mask": 0, "random": 0, "kept": 0}
    counts = {"mask": 0, "random": 0, "kept": 0}
    for seed in seeds:
        for text in texts:
            lab = masking_lab(loaded, text, seed=seed)
            for kind, right in zip(lab.kind, lab.correct, strict=True):
                if kind in counts:
                    counts[kind] += 1
                    hits[kind] += bool(right)
    total = sum(counts.values())
    accuracy = {k: hits[k] / counts[k] if counts[k] else float("nan") for k in counts}
    accuracy["all"] = sum(hits.values()) / total if total else float("nan")
    share = {k: counts[k] / total if total else float("nan") for k in counts}
    return {"counts": counts, "accuracy": accuracy, "share": share, "selected": total}


def copying_share(result: dict[str, Any]) -> float:
    """Of all correct predictions, the share made at kept positions (where the answer is in
    the input and copying it is enough)."""
    hits = {k: result["accuracy"][k] * result["counts"][k] for k in result["counts"]}
    total = sum(v for v in hits.values() if v == v)  # NaN-free
    return hits["kept"] / total if total else float("nan")


def loss_curve(train_losses: list[float], valid_loss: float | None = None):
    """The training loss per step (plotly), the validation loss as a dashed line."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(y=train_losses, mode="lines", name="training loss"))
    if valid_loss is not None:
        fig.add_hline(
            y=valid_loss,
            line_dash="dash",
            annotation_text=f"validation loss {valid_loss:.2f}",
            annotation_position="top right",
        )
    fig.update_layout(
        title="The fixed loop: masked-LM loss per step",
        xaxis_title="step",
        yaxis_title="loss (nats)",
        height=360,
        margin={"t": 60, "b": 40},
    )
    return fig


def examples_from(encoding: Any, next_sentence_labels: list[int] | None = None) -> list[dict]:
    """A padded tokenizer output (B, T) back to one dict per row without its padding (what
    :class:`~minibert.data.examples.MaskingCollator` takes), with NSP labels if given."""
    rows = []
    for b, keep in enumerate(encoding["attention_mask"].bool()):
        row = {"input_ids": encoding["input_ids"][b][keep].tolist()}
        if "token_type_ids" in encoding:
            row["token_type_ids"] = encoding["token_type_ids"][b][keep].tolist()
        if next_sentence_labels is not None:
            row["next_sentence_label"] = next_sentence_labels[b]
        rows.append(row)
    return rows


def copying_verdict(result: dict[str, Any]) -> str:
    """One sentence that reads :func:`kind_accuracy`'s numbers (so the prose never states a
    number the run did not produce)."""
    acc = result["accuracy"]
    kept, masked = acc["kept"], acc["mask"]
    if not (kept == kept and masked == masked):  # NaN: a kind never came up
        return "Too few selected positions to compare the kinds: use more sentences or seeds."
    if kept >= masked + 0.15:
        return (
            f"At kept positions the model is right {kept:.0%} of the time, at [MASK] only "
            f"{masked:.0%}: the answer is in the input, and {copying_share(result):.0%} of all "
            "its correct guesses are such copies. The [MASK] column is the one that measures "
            "what it learned about context."
        )
    return (
        f"This run is still short: it is right {kept:.0%} of the time at kept positions and "
        f"{masked:.0%} at [MASK], so it has not even learned to copy yet (it guesses frequent "
        "words everywhere). Longer runs copy almost every kept token long before they fill "
        "[MASK] well: docs/recipe.md's table shows the split for the kit's 5-minute runs."
    )
