"""Every numeric setting is checked as a finite number in its range (issue 13, point 5).

NaN slips through the usual ``if value <= 0`` check (every comparison with NaN is False), and
an infinite time budget gives a learning-rate schedule that never decays; both used to start a
run. Each case goes through the same path as the command line (``apply_overrides`` with the
string the user typed), and the message names the setting and what to write instead.
"""

from __future__ import annotations

import math

import pytest

from minibert.data.clean import CleaningConfig
from minibert.train.demo import DemoConfig
from minibert.train.overrides import apply_overrides
from minibert.train.settings import PretrainConfig, check_number, reject_non_finite

BAD_PRETRAIN_SETTINGS = [
    # (key as typed, value as typed, the part of the message that must appear)
    ("lr", "nan", "optim.lr must be a finite number > 0"),
    ("lr", "inf", "optim.lr must be a finite number > 0"),
    ("lr", "-1e-3", "optim.lr must be a finite number > 0"),
    ("time-budget", "nan", "train.time_budget must be a finite number > 0"),
    ("time-budget", "inf", "for no time limit leave it out"),
    ("weight_decay", "nan", "optim.weight_decay"),
    ("eps", "inf", "optim.eps"),
    ("betas", "0.9,nan", "optim.betas"),
    ("max_grad_norm", "nan", "use none to switch clipping off"),
    ("warmup_fraction", "nan", "optim.warmup_fraction"),
    ("min_lr_ratio", "inf", "optim.min_lr_ratio"),
    ("eval_batch_size", "-1", "train.eval_batch_size must be an integer >= 1 (or none)"),
    ("eval_batch_size", "0", "eval_examples 0 turns evaluation off"),
    ("batch_size", "0", "train.batch_size must be an integer >= 1"),
    ("eval_examples", "-5", "train.eval_examples must be an integer >= 0"),
    ("num_threads", "0", "none uses every core"),
    ("device", "gpu", "train.device 'gpu' is not a device; use auto, cpu, cuda"),
    ("mlm_probability", "nan", "objective.mlm_probability"),
    ("short_seq_prob", "1.5", "objective.short_seq_prob must be a finite number in [0, 1]"),
    ("short_seq_prob", "nan", "objective.short_seq_prob"),
    ("local_attention_scale", "nan", "init.local_attention_scale"),
    ("position_init_std", "inf", "init.position_init_std"),
    ("attention_identity_init", "nan", "init.attention_identity_init"),
    ("model.layer_norm_eps", "nan", "layer_norm_eps must be a positive number"),
    ("model.initializer_range", "inf", "initializer_range must be a positive number"),
    ("min_mean_word_length", "nan", "min_mean_word_length must be a finite number"),
    ("max_line_chars", "-1", "max_line_chars must be a non-negative integer"),
    ("limit_alphabet", "0", "limit_alphabet must be a positive integer or None"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_PRETRAIN_SETTINGS)
def test_bad_numbers_are_rejected_with_the_setting_and_the_fix(key, value, message):
    with pytest.raises(ValueError) as caught:
        apply_overrides(PretrainConfig(), {key: value})
    assert message in str(caught.value)


def test_good_numbers_still_pass():
    config = apply_overrides(
        PretrainConfig(),
        {
            "lr": "1e-4",
            "time_budget": "0.5",
            "eval_batch_size": "8",
            "max_grad_norm": "none",
            "device": "cpu",
            "short_seq_prob": "0",
        },
    )
    assert config.optim.lr == 1e-4 and config.train.time_budget == 0.5
    assert config.train.eval_batch_size == 8 and config.optim.max_grad_norm is None
    reject_non_finite(config)  # no NaN or inf anywhere in the default tree


@pytest.mark.parametrize(
    ("value", "message"),
    [("nan", "time_budget must be a finite number > 0"), ("inf", "time_budget"), ("0", "> 0")],
)
def test_demo_time_budget_must_be_finite(value, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(DemoConfig(), {"time_budget": value})


def test_check_number_explains_range_and_fix():
    check_number("x", 3, low=1, integer=True)
    check_number("x", None, low=1, optional=True)
    with pytest.raises(ValueError, match=r"x must be an integer >= 1, got 2.5"):
        check_number("x", 2.5, low=1, integer=True)
    with pytest.raises(ValueError, match=r"x must be a finite number in \(0, 1\], got nan; do y"):
        check_number("x", math.nan, low=0, high=1, low_open=True, fix="do y")
    with pytest.raises(ValueError, match="got True"):
        check_number("x", True, low=0)


def test_reject_non_finite_walks_the_tree():
    with pytest.raises(ValueError, match="near_dup_threshold"):
        CleaningConfig(near_dup_threshold=math.nan)
    config = PretrainConfig()
    object.__setattr__(config.data.cleaning, "max_symbol_ratio", math.inf)  # bypass checks
    with pytest.raises(ValueError, match="data.cleaning.max_symbol_ratio must be a finite"):
        reject_non_finite(config)
