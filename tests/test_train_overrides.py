"""Config files and --key value overrides mapped onto the training config dataclasses."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from minibert.train.overrides import (
    accept_overrides,
    apply_overrides,
    config_from_dict,
    config_keys,
    config_to_dict,
    convert_value,
    flatten_config_mapping,
    load_config_file,
    parse_args_with_overrides,
    parse_cli_overrides,
    resolve_key,
)
from minibert.train.pretraining import build_pretrain_config
from minibert.train.settings import OptimConfig, PretrainConfig, TrainConfig


@dataclass
class Inner:
    rate: float = 0.1
    name: str = "a"

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must be >= 0")


@dataclass
class Other:
    rate: float = 0.5
    steps: int | None = None


@dataclass
class Outer:
    KEY_ALIASES: ClassVar[dict[str, str]] = {"rate": "inner.rate"}
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    pair: tuple[float, float] = (0.9, 0.999)
    inner: Inner = field(default_factory=Inner)
    other: Other = field(default_factory=Other)


def test_keys_are_dotted_leaves_in_order():
    assert config_keys(Outer()) == [
        "mode",
        "flag",
        "pair",
        "inner.rate",
        "inner.name",
        "other.rate",
        "other.steps",
    ]


def test_resolve_bare_dotted_hyphenated_and_alias():
    config = Outer()
    assert resolve_key(config, "--other.steps") == "other.steps"
    assert resolve_key(config, "steps") == "other.steps"  # unique bare name
    assert resolve_key(config, "name") == "inner.name"
    assert resolve_key(config, "rate") == "inner.rate"  # shared name settled by KEY_ALIASES


def test_unknown_key_lists_the_valid_ones_and_suggests():
    with pytest.raises(ValueError) as err:
        resolve_key(Outer(), "other.stesp")
    message = str(err.value)
    assert "unknown config key 'other.stesp'" in message
    assert "Did you mean other.steps" in message
    for key in config_keys(Outer()):
        assert key in message


def test_ambiguous_and_section_keys_are_errors():
    @dataclass
    class NoAlias:
        inner: Inner = field(default_factory=Inner)
        other: Other = field(default_factory=Other)

    with pytest.raises(ValueError, match="ambiguous.*inner.rate, other.rate"):
        resolve_key(NoAlias(), "rate")
    with pytest.raises(ValueError, match="is a section"):
        resolve_key(NoAlias(), "inner")


def test_type_conversion_from_strings():
    config = apply_overrides(
        Outer(),
        {
            "mode": "slow",
            "flag": "yes",
            "pair": "0.8,0.95",
            "inner.rate": "3e-4",
            "other.steps": "1e3",
        },
    )
    assert config.mode == "slow" and config.flag is True
    assert config.pair == (0.8, 0.95)
    assert config.inner.rate == pytest.approx(3e-4) and isinstance(config.inner.rate, float)
    assert config.other.steps == 1000 and isinstance(config.other.steps, int)
    assert apply_overrides(config, {"other.steps": "none"}).other.steps is None
    assert convert_value("[1, 2]", list[int]) == [1, 2]
    assert convert_value('{"0": "neg"}', dict[int, str]) == {0: "neg"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mode", "medium", "not one of"),
        ("flag", "maybe", "not a boolean"),
        ("other.steps", "2.5", "not an integer"),
        ("inner.rate", "fast", "not a number"),
        ("pair", "1,2,3", "expected 2 values"),
    ],
)
def test_bad_values_say_what_is_wrong(key, value, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Outer(), {key: value})


def test_overrides_rerun_validation_and_leave_the_original_alone():
    original = Outer()
    with pytest.raises(ValueError, match="rate must be >= 0"):
        apply_overrides(original, {"inner.rate": -1})
    changed = apply_overrides(original, {"inner.rate": 0.2})
    assert original.inner.rate == 0.1 and changed.inner.rate == 0.2


def test_cli_tokens():
    tokens = ["--lr", "3e-4", "--model.hidden-size=64", "--nsp", "--no-progress", "--min", "-1"]
    assert parse_cli_overrides(tokens) == {
        "lr": "3e-4",
        "model.hidden-size": "64",
        "nsp": True,
        "progress": False,
        "min": "-1",
    }
    with pytest.raises(ValueError, match="unexpected argument"):
        parse_cli_overrides(["stray"])


def test_config_files_nested_or_flat(tmp_path):
    yaml_file = tmp_path / "recipe.yaml"
    yaml_file.write_text(
        "train:\n  max_steps: 50\noptim:\n  lr: 5.0e-4\nmodel.num_hidden_layers: 3\n"
    )
    flat = flatten_config_mapping(PretrainConfig(), load_config_file(yaml_file))
    assert flat == {"train.max_steps": 50, "optim.lr": 5e-4, "model.num_hidden_layers": 3}
    json_file = tmp_path / "recipe.json"
    json_file.write_text(json.dumps({"data": {"cleaning": {"min_words": 10}}}))
    flat = flatten_config_mapping(PretrainConfig(), load_config_file(json_file))
    assert flat == {"data.cleaning.min_words": 10}
    toml_file = tmp_path / "recipe.toml"
    toml_file.write_text("lr = 1\n")
    with pytest.raises(ValueError, match=r"\.yaml, \.yml or \.json"):
        load_config_file(toml_file)


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")


def test_pretrain_config_preset_first_then_model_overrides():
    config = build_pretrain_config({"preset": "mini", "model.num_hidden_layers": "2", "lr": "5e-4"})
    assert config.preset == "mini"
    assert config.model.hidden_size == 256  # from the mini preset
    assert config.model.num_hidden_layers == 2  # the override wins over the preset
    assert config.optim.lr == 5e-4
    # seed and vocab_size exist in two sections; the bare names have a documented meaning
    config = build_pretrain_config({"seed": 7, "vocab_size": 4000})
    assert config.train.seed == 7 and config.data.seed == 0
    assert config.data.vocab_size == 4000


def test_pretrain_config_round_trips_through_json():
    config = build_pretrain_config({"preset": "tiny", "max_steps": 10, "betas": "0.9,0.98"})
    text = json.dumps(config_to_dict(config))
    assert config_from_dict(PretrainConfig, json.loads(text)) == config


def test_config_validation_messages():
    with pytest.raises(ValueError, match="not divisible by train.grad_accum_steps"):
        TrainConfig(batch_size=10, grad_accum_steps=3)
    with pytest.raises(ValueError, match="optim.schedule"):
        OptimConfig(schedule="exponential")
    with pytest.raises(ValueError, match="max_position_embeddings"):
        build_pretrain_config({"data.max_seq_len": 600})


def _verbs_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    subparsers = parser.add_subparsers(dest="verb")
    go = subparsers.add_parser("go", allow_abbrev=False)
    go.add_argument("--out")
    accept_overrides(go)
    plain = subparsers.add_parser("plain", allow_abbrev=False)
    plain.add_argument("--out")
    return parser


def test_argparse_keeps_unknown_options_for_a_verb_that_accepts_overrides():
    # Plain argparse: the verb's parser keeps its class (it used to be swapped at run time).
    parser = _verbs_parser()
    args = parse_args_with_overrides(parser, ["go", "--out", "d", "--optim.lr", "1e-3", "--nsp"])
    assert args.out == "d"
    assert parse_cli_overrides(args.overrides) == {"optim.lr": "1e-3", "nsp": True}
    assert parse_args_with_overrides(parser, ["go", "--out", "d"]).overrides == []


def test_argparse_still_rejects_unknown_options_of_other_verbs(capsys):
    parser = _verbs_parser()
    with pytest.raises(SystemExit) as exit_info:
        parse_args_with_overrides(parser, ["plain", "--out", "d", "--lr", "3"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --lr 3" in capsys.readouterr().err
    assert not hasattr(parse_args_with_overrides(parser, ["plain"]), "overrides")


def test_the_finetune_command_line_maps_every_spelling_onto_the_config():
    """What the hand-written overrides give the command line that jsonargparse, tyro and
    OmegaConf do not (see minibert.train.overrides): bare names, aliases, hyphens, 1e3 for an
    integer, comma lists, none; a --config file under the flags; an unknown key listing the
    valid ones. Parsed as ``minibert finetune`` parses them, without training."""
    from minibert.cli import build_parser
    from minibert.train.cli import collect_overrides
    from minibert.train.finetuning import FinetuneConfig, build_finetune_config

    def config_of(*argv):
        args = parse_args_with_overrides(build_parser(), ["finetune", "--out", "x", *argv])
        return build_finetune_config(collect_overrides(args, FinetuneConfig()))

    config = config_of(
        "--task", "sentiment",  # alias of task.name (also a shortcut flag)
        "--seed", "3",  # alias of train.seed
        "--min-delta", "0.01",  # bare and hyphenated: early_stopping.min_delta
        "--max_steps=1e3",  # an integer written as 1e3
        "--optim.betas", "0.8,0.95",  # a tuple from a comma list
        "--train.eval-batch-size", "none",  # Optional[int]
        "--no-progress",  # a boolean switched off
        "--classifier_dropout", "0.2",
    )  # fmt: skip
    assert config.task.name == "sentiment" and config.train.seed == 3
    assert config.early_stopping.min_delta == 0.01 and config.train.max_steps == 1000
    assert config.optim.betas == (0.8, 0.95) and config.train.eval_batch_size is None
    assert config.train.progress is False and config.classifier_dropout == 0.2
    with pytest.raises(ValueError, match="unknown config key 'early_stopping.patiense'") as err:
        config_of("--early_stopping.patiense", "2")
    assert "Did you mean early_stopping.patience" in str(err.value)
    assert "Valid keys: task.name, task.max_seq_len" in str(err.value)
