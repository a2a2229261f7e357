"""``minibert prepare-data`` and ``minibert train-tokenizer``: help, runs, errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from minibert.cli import main

_WORDS = str.split(
    "river mountain harbour village council market engine garden winter summer castle railway "
    "bridge forest island school church museum station factory library theatre valley coast"
)


@pytest.fixture
def corpus(tmp_path, monkeypatch) -> Path:
    """A small local corpus (with one exact duplicate) and a private cache via MINIBERT_CACHE."""
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path / "cache"))
    rng = random.Random(0)
    docs = []
    for _ in range(20):
        sentences = [
            f"The {' '.join(rng.choices(_WORDS, k=rng.randint(5, 9)))} stood near the {rng.choice(_WORDS)} and the {rng.choice(_WORDS)}."
            for _ in range(10)
        ]
        docs.append(" ".join(sentences))
    docs.append(docs[3].upper())  # an exact duplicate (case variant)
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


SMALL = ["--vocab-size", "150", "--min-frequency", "1", "--max-seq-len", "32", "--no-progress"]


def test_top_level_help_lists_the_data_verbs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "prepare-data" in out and "train-tokenizer" in out


@pytest.mark.parametrize("verb", ["prepare-data", "train-tokenizer"])
def test_verb_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--corpus",
        "--vocab-size",
        "--min-words",
        "--near-dup-threshold",
        "--no-near-dedup",
        "--cache-dir",
    ):
        assert option in out
    assert ("--output" in out) == (verb == "train-tokenizer")


def test_prepare_data_prints_stats_and_removal_report(corpus, tmp_path, capsys):
    report_path = tmp_path / "out" / "report.json"
    code = main(
        ["prepare-data", "--corpus", str(corpus), *SMALL, "--json", str(report_path), "--examples"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "cache miss" in out
    assert "statistics (parsed -> cleaned)" in out and "type/token ratio" in out
    assert "what each step removed" in out
    exact_row = next(line for line in out.splitlines() if line.startswith("exact_dedup "))
    assert exact_row.split()[1:4] == ["21", "20", "1"]
    assert "[exact_dedup]" in out  # --examples shows the removed copy
    assert "timings:" in out
    payload = json.loads(report_path.read_text())
    assert payload["train_documents"] + payload["valid_documents"] == 20
    assert payload["data_config"]["vocab_size"] == 150
    assert {r["name"] for r in payload["reports"]} >= {"normalize", "exact_dedup", "near_dedup"}
    assert payload["stats"]["cleaned"]["documents"] == 20
    assert (
        tmp_path / "cache" / "data" / payload["data_fingerprint"]
    ).is_dir()  # MINIBERT_CACHE used

    assert main(["prepare-data", "--corpus", str(corpus), *SMALL]) == 0
    assert "cache hit" in capsys.readouterr().out


def test_train_tokenizer_saves_a_loadable_folder(corpus, tmp_path, capsys):
    from minibert.data.tokenizer import load_tokenizer

    output = tmp_path / "tok"
    assert main(["train-tokenizer", "--corpus", str(corpus), *SMALL, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "WordPiece tokenizer: 150 entries" in out and "[UNK] rate" in out
    tokenizer = load_tokenizer(output)
    assert len(tokenizer) == 150
    assert tokenizer.tokenize("The river") == ["the", "river"]

    # A second run refuses to overwrite unless asked.
    assert main(["train-tokenizer", "--corpus", str(corpus), *SMALL, "--output", str(output)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (
        main(["train-tokenizer", "--corpus", str(corpus), *SMALL, "-o", str(output), "--overwrite"])
        == 0
    )


def test_settings_from_a_config_file_and_the_command_line(corpus, tmp_path, capsys):
    config_file = tmp_path / "data.yaml"
    config_file.write_text(
        f"corpus: {corpus}\ncleaning:\n  exact_dedup: false\nvocab_size: 140\n", encoding="utf-8"
    )
    report_path = tmp_path / "report.json"
    code = main(
        [
            "prepare-data",
            "--config",
            str(config_file),
            "--vocab-size",
            "160",
            "--min-frequency",
            "1",
            "--max-seq-len",
            "32",
            "--no-near-dedup",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    payload = json.loads(report_path.read_text())
    settings = payload["data_config"]
    assert settings["vocab_size"] == 160  # the command line beats the file
    assert (
        settings["cleaning"]["exact_dedup"] is False and settings["cleaning"]["near_dedup"] is False
    )
    assert payload["train_documents"] + payload["valid_documents"] == 21  # nothing deduplicated


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--vocab-size", "many"], "vocab_size"),
        (["--min-words", "-1"], "min_words"),
        (["--near-dup-threshold", "2"], "near_dup_threshold"),
        (["--corpus", "no-such-corpus"], "unknown corpus"),
        (["--corpus", "missing/file.jsonl"], "does not exist"),
    ],
)
def test_bad_settings_are_one_clear_line(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path / "cache"))
    assert main(["prepare-data", "--no-progress", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minibert prepare-data: error:") and message in err
    assert "Traceback" not in err


def test_empty_corpus_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["prepare-data", "--corpus", str(empty), "--no-progress"]) == 2
    assert "no documents" in capsys.readouterr().err
