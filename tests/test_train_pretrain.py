"""Pretraining end to end, in-process, on a micro model: the run directory contract, loading the
result with transformers, evaluation, the NaN stop, the time budget, bad input and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from minibert.cli import main
from minibert.train.evaluate import evaluate_run, fill_mask, load_masked_lm
from minibert.train.loop import NonFiniteLossError
from minibert.train.pretrain import PretrainingTask, pretrain
from minibert.train.rundir import RunDirectory, read_metrics

# A micro model on the small lee-news corpus: a step takes milliseconds.
MICRO = {
    "data.corpus": "lee-news",
    "data.vocab_size": 1000,
    "model.hidden_size": 32,
    "model.num_hidden_layers": 1,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
    "train.batch_size": 8,
    "train.eval_examples": 24,
    "train.num_threads": 1,
    "train.progress": False,
    "objective.nsp": True,  # these tests check the NSP metrics too (the recipe's default is off)
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("runs") / "micro"
    result = pretrain(
        out=out,
        cache_dir=cache_dir,
        overrides={
            **MICRO,
            "max_steps": 12,
            "eval_every": 6,
            "checkpoint_every": 5,
            "keep_checkpoints": 2,
            "log_every": 3,
        },
    )
    return out, result


def test_run_directory_layout(finished_run):
    out, result = finished_run
    assert result.step == 12 and result.stop_reason == "max_steps"
    assert (out / "run.json").is_file() and (out / "metrics.jsonl").is_file()
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    run = RunDirectory(out)
    # checkpoints at 5 and 10, the stop at 12; keep_checkpoints=2 leaves the newest two
    assert [step for step, _ in run.checkpoints()] == [10, 12]
    for directory in (run.checkpoint_dir(12), run.final_dir):
        for name in ("config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"):
            assert (directory / name).is_file(), (directory, name)
    assert (run.checkpoint_dir(12) / "optimizer.pt").is_file()
    assert not [p for p in out.rglob(".tmp-*")]
    state = json.loads((run.checkpoint_dir(10) / "trainer_state.json").read_text())
    assert state["step"] == 10 and state["batch_in_epoch"] == 10 and "torch" in state["rng"]
    assert state["extra"]["scheduler"]["kind"] == "linear"


def test_run_json_records_config_versions_and_fingerprints(finished_run):
    out, _ = finished_run
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "pretrain" and info["seed"] == 0
    assert info["config"]["model"]["hidden_size"] == 32
    assert info["config"]["model"]["vocab_size"] == 1000  # follows the tokenizer
    assert info["config"]["train"]["max_steps"] == 12
    assert info["config"]["data"]["corpus"] == "lee-news"
    assert len(info["data"]["data_fingerprint"]) >= 16
    assert len(info["data"]["tokenizer_fingerprint"]) >= 16
    for package in ("minibert", "torch", "transformers", "tokenizers", "python"):
        assert info["versions"][package]
    assert info["runtime"]["precision"] in ("fp32", "bf16-autocast")
    assert info["examples"]["eval"] == 24


def test_metrics_lines(finished_run):
    out, _ = finished_run
    records = read_metrics(out)
    for record in records:
        for key in ("step", "split", "time", "wall_time", "tokens"):
            assert key in record, record
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in train] == [3, 6, 9, 12]
    assert [r["step"] for r in evals] == [6, 12]
    for record in train:
        for key in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy", "lr"):
            assert isinstance(record[key], float), (key, record)
        assert record["loss"] == pytest.approx(record["mlm_loss"] + record["nsp_loss"])
        assert record["tokens_per_second"] > 0
    for record in evals:
        assert 0 <= record["mlm_accuracy"] <= 1 and record["examples"] == 24
    tokens = [r["tokens"] for r in train]
    assert tokens == sorted(tokens) and tokens[0] > 0
    # 10% warmup is over by step 2; then the rate decays linearly towards zero.
    rates = [r["lr"] for r in train]
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.1 * max(rates)
    assert records[-1]["split"] == "event" and records[-1]["reason"] == "max_steps"


def test_final_loads_in_transformers_and_fill_mask_agrees(finished_run):
    from transformers import AutoModelForMaskedLM, pipeline

    out, _ = finished_run
    final = str(out / "final")
    hf_model = AutoModelForMaskedLM.from_pretrained(final)
    assert hf_model.config.hidden_size == 32
    text = "The prime minister said the [MASK] would meet."
    hf_top = pipeline("fill-mask", model=final, top_k=3)(text)
    model, tokenizer = load_masked_lm(out)  # a run directory resolves to its final/
    ours = fill_mask(model, tokenizer, text, top_k=3)[0]
    assert [c.token_id for c in ours] == [c["token"] for c in hf_top]
    for candidate, reference in zip(ours, hf_top, strict=True):
        assert candidate.score == pytest.approx(reference["score"], rel=1e-4, abs=1e-6)
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        fill_mask(model, tokenizer, "nothing to fill")


def test_evaluate_run_reproduces_the_last_logged_evaluation(finished_run, cache_dir):
    out, _ = finished_run
    logged = read_metrics(out, split="eval")[-1]
    metrics = evaluate_run(out, cache_dir=cache_dir)
    for key in ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"):
        assert metrics[key] == pytest.approx(logged[key], rel=1e-6), key
    # An older checkpoint evaluates differently; a different batch size does not matter.
    older = evaluate_run(out, checkpoint=out / "checkpoints" / "step-000010", cache_dir=cache_dir)
    assert older["mlm_loss"] != pytest.approx(metrics["mlm_loss"], rel=1e-9)
    rebatched = evaluate_run(out, batch_size=5, cache_dir=cache_dir)
    assert rebatched["mlm_loss"] == pytest.approx(metrics["mlm_loss"], rel=1e-6)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    tmp_path, cache_dir, monkeypatch
):
    original = PretrainingTask.loss_terms
    calls = {"n": 0}

    def poisoned(self, model, batch):
        terms = original(self, model, batch)
        calls["n"] += 1
        if calls["n"] > 7 and model.training:  # training forward passes 8, 9, ...
            terms.losses["mlm"] = terms.losses["mlm"] * float("nan")
        return terms

    monkeypatch.setattr(PretrainingTask, "loss_terms", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError) as err:
        pretrain(
            out=out,
            cache_dir=cache_dir,
            overrides={**MICRO, "max_steps": 20, "checkpoint_every": 5, "eval_every": 0},
        )
    message = str(err.value)
    assert "nan" in message and "step 8" in message and "step-000005" in message
    assert "--lr" in message
    run = RunDirectory(out)
    assert [step for step, _ in run.checkpoints()] == [5]
    assert not run.final_dir.exists()
    events = [r for r in read_metrics(out) if r["split"] == "event"]
    assert events[-1]["event"] == "nonfinite_loss"
    # The kept checkpoint holds finite weights.
    model, _ = load_masked_lm(run.checkpoint_dir(5))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_time_budget_stops_the_run(tmp_path, cache_dir):
    result = pretrain(
        out=tmp_path / "timed",
        cache_dir=cache_dir,
        overrides={**MICRO, "time_budget": 1.5, "eval_every": 0, "checkpoint_every": 0},
    )
    assert result.stop_reason == "time_budget"
    assert result.step > 0 and 1.5 <= result.elapsed < 10
    assert (tmp_path / "timed" / "final" / "model.safetensors").is_file()
    train = read_metrics(tmp_path / "timed", split="train")
    assert train[-1]["lr"] < max(r["lr"] for r in train)  # the time-based schedule decayed


def test_bad_output_directories_are_clear_errors(tmp_path, cache_dir, capsys):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    assert main(["pretrain", "--out", str(occupied), "--max-steps", "1"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "keep me"
    assert main(["pretrain", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    no_checkpoint = tmp_path / "no-ckpt"
    RunDirectory.create(no_checkpoint).write_run_json({"kind": "pretrain"})
    assert main(["pretrain", "--out", str(no_checkpoint), "--resume"]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path / "x"), "--model.hiden_size", "8"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'model.hiden_size'" in err and "model.hidden_size" in err


def test_resuming_a_finished_run_trains_no_further(finished_run, cache_dir):
    out, _ = finished_run
    before = [r for r in read_metrics(out) if r["split"] != "event"]
    result = pretrain(out=out, resume=True, cache_dir=cache_dir)
    assert result.step == 12 and result.final_dir == out / "final"
    assert [r for r in read_metrics(out) if r["split"] != "event"] == before


def test_resume_may_only_change_how_long_and_how_to_report(finished_run, cache_dir, capsys):
    out, _ = finished_run
    args = ["pretrain", "--out", str(out), "--resume", "--cache-dir", str(cache_dir)]
    assert main([*args, "--lr", "0.1"]) == 2
    assert "cannot change when resuming" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["pretrain", "evaluate", "fill-mask"])
def test_cli_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"minibert {verb}" in text
    if verb == "pretrain":
        assert "--time-budget" in text and "--optim.lr" in text and "--resume" in text


def test_cli_evaluate_and_fill_mask(finished_run, cache_dir, capsys):
    out, _ = finished_run
    assert main(["evaluate", "--run", str(out), "--cache-dir", str(cache_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mlm_loss"] == pytest.approx(read_metrics(out, split="eval")[-1]["mlm_loss"])
    text = "The [MASK] said on [MASK]."
    assert main(["fill-mask", "--model", str(out / "final"), "--top-k", "2", text]) == 0
    shown = capsys.readouterr().out
    assert "[MASK] #1" in shown and "[MASK] #2" in shown and shown.count("  1. ") == 2


def test_resume_refuses_a_checkpoint_damaged_after_it_was_saved(finished_run, cache_dir, tmp_path):
    import shutil

    from minibert.train.checkpoint import CheckpointCorruptError

    out = tmp_path / "copy"
    shutil.copytree(finished_run[0], out)
    weights = RunDirectory(out).latest_checkpoint() / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor: it still loads, silently wrong
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorruptError, match="model.safetensors has changed"):
        pretrain(out=out, resume=True, cache_dir=cache_dir)
