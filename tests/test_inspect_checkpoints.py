"""minibert.inspect on a run: sources inside runs, checkpoints, attention over training + cache."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import torch

from minibert.inspect import (
    ModelSourceError,
    NoCheckpointsError,
    attention,
    attention_over_training,
    list_checkpoints,
    load_model,
)
from minibert.inspect.sources import clear_model_cache

TEXT = "the minister said the government would act."


def test_run_sources_resolve_final_and_checkpoints(micro_run):
    final = load_model(micro_run)
    assert final.source.kind == "final" and final.source.run == micro_run
    assert final.source.step == 12 and "@ step 12" in final.source.label
    four = load_model(micro_run, checkpoint=4)
    assert four.source.kind == "checkpoint" and four.source.step == 4
    assert load_model(micro_run, checkpoint="step-000004") is four
    assert load_model(micro_run / "checkpoints" / "step-000004") is four
    assert load_model(micro_run / "final", checkpoint=4) is four
    # every checkpoint shares the run's tokenizer object
    assert four.tokenizer is final.tokenizer
    with pytest.raises(ModelSourceError, match=r"no checkpoint at step 5; it has steps \[2, 4"):
        load_model(micro_run, checkpoint=5)


def test_list_checkpoints_reads_trainer_state(micro_run):
    found = list_checkpoints(micro_run)
    assert [info.step for info in found] == [2, 4, 6, 8, 10, 12]
    tokens = [info.tokens_seen for info in found]
    assert all(t > 0 for t in tokens) and tokens == sorted(tokens)
    times = [info.wall_time for info in found]
    assert all(t >= 0 for t in times) and times == sorted(times)


def test_partial_checkpoint_and_empty_run(micro_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(micro_run, run)
    # a save in progress: the trainer writes .tmp-step-*/ and renames it when complete
    partial = run / "checkpoints" / ".tmp-step-000014-123"
    shutil.copytree(run / "checkpoints" / "step-000012", partial)
    (partial / "model.safetensors").write_bytes(b"half")
    assert [info.step for info in list_checkpoints(run)][-1] == 12
    with pytest.raises(ModelSourceError, match="still being written"):
        load_model(partial)
    over = attention_over_training(run, TEXT, cache_dir=tmp_path / "cache")
    assert over.steps == [2, 4, 6, 8, 10, 12]
    # a run that has not saved anything yet
    shutil.rmtree(run / "final")
    for child in (run / "checkpoints").iterdir():
        shutil.rmtree(child)
    assert list_checkpoints(run) == []
    with pytest.raises(NoCheckpointsError, match="no complete checkpoint"):
        attention_over_training(run, TEXT, cache_dir=tmp_path / "cache")
    with pytest.raises(NoCheckpointsError, match="no weights yet"):
        load_model(run)
    (run / "fold-0").mkdir()  # a cross-validation run keeps its models in fold-<k>/ runs
    with pytest.raises(ModelSourceError, match="cross-validation run.*fold-0"):
        load_model(run)
    with pytest.raises(ModelSourceError, match="not a minibert run"):
        list_checkpoints(tmp_path / "cache")


def test_attention_over_training_matches_each_checkpoint_and_caches(micro_run, tmp_path):
    cache = tmp_path / "cache"
    over = attention_over_training(micro_run, TEXT, cache_dir=cache)
    assert over.steps == [2, 4, 6, 8, 10, 12]
    assert len(list(cache.glob("*.npz"))) == 6
    for info, result in zip(over.checkpoints, over.results, strict=True):
        direct = attention(load_model(info.path), TEXT)
        assert result.tokens == direct.tokens and result.source.step == info.step
        np.testing.assert_array_equal(result.attentions, direct.attentions)
    assert over.stacked().shape == (6, *over.results[0].attentions.shape)
    # weights change as training goes (the run really trains)
    assert not np.allclose(over.results[0].attentions, over.results[-1].attentions)

    clear_model_cache()  # the second look must not need the models at all
    start = time.perf_counter()
    again = attention_over_training(micro_run, TEXT, cache_dir=cache)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed  # the issue asks < 100 ms for 20 checkpoints, on a quiet machine
    for first, second in zip(over.results, again.results, strict=True):
        assert second.tokens == first.tokens and second.words == first.words
        assert second.word_ids == first.word_ids and second.source == first.source
        np.testing.assert_array_equal(second.attentions, first.attentions)


def test_cache_is_keyed_on_mtime_and_text(micro_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(micro_run, run)
    cache = tmp_path / "cache"
    attention_over_training(run, TEXT, cache_dir=cache)
    attention_over_training(run, TEXT + " again", cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 12
    weights = run / "checkpoints" / "step-000002" / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    attention_over_training(run, TEXT, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 13  # the rewritten checkpoint was recomputed


def test_checkpoints_load_exactly_what_from_pretrained_loads(micro_run):
    from minibert.heads import BertForMaskedLM

    for step in (2, 12):
        path = micro_run / "checkpoints" / f"step-{step:06d}"
        ours = load_model(path).model  # built from the run's per-config template
        reference = BertForMaskedLM.from_pretrained(path)
        assert type(ours) is BertForMaskedLM and not ours.training
        expected = reference.state_dict()
        got = ours.state_dict()
        assert got.keys() == expected.keys()
        for name, tensor in expected.items():
            assert torch.equal(got[name], tensor), name
    first, last = load_model(micro_run, checkpoint=2), load_model(micro_run, checkpoint=12)
    assert first.model is not last.model  # copies, not one template shared


def test_load_model_head_property(micro_run):
    assert load_model(micro_run).head == "masked-lm" and load_model(micro_run).has_mlm_head
