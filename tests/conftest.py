"""Test-wide settings: nothing in the suite may reach a hub."""

import os

import pytest

# Set before transformers/datasets/huggingface_hub are imported by any test module, so a
# code path that would download fails at once instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One data cache for every training test in the session.

    Entries are content-addressed (a hash of corpus + settings), so tests that ask for different
    data never collide, and the corpus is cleaned and tokenized once per session, not per module.
    """
    path = tmp_path_factory.getbasetemp() / "train-data-cache"
    path.mkdir(exist_ok=True)
    return path


# A micro pretraining run with several checkpoints, shared by tests that read runs
# (inspect, dashboard). Two layers of two heads on the small lee-news corpus: a step takes
# milliseconds, so the whole run takes a few seconds once per session.
MICRO_RUN_OVERRIDES = {
    "data.corpus": "lee-news",
    "data.vocab_size": 1000,
    "model.hidden_size": 32,
    "model.num_hidden_layers": 2,
    "model.num_attention_heads": 2,
    "model.intermediate_size": 64,
    "train.batch_size": 8,
    "train.eval_examples": 16,
    "train.num_threads": 1,
    "train.progress": False,
    "max_steps": 12,
    "eval_every": 6,
    "checkpoint_every": 2,
    "keep_checkpoints": 0,  # keep all six: step 2, 4, ..., 12
    "log_every": 2,
}


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory, cache_dir):
    """A finished micro pretraining run: checkpoints at steps 2, 4, ..., 12 and final/.

    Read-only for tests: copy it (shutil.copytree) before changing anything in it.
    """
    from minibert.train.pretrain import pretrain

    out = tmp_path_factory.mktemp("micro-run") / "micro"
    pretrain(out=out, cache_dir=cache_dir, overrides=MICRO_RUN_OVERRIDES)
    return out


# A fine-tuning run (wiki-topic, 6 classes) from micro_run: results.json, predictions.jsonl,
# confusion_matrix.json and two checkpoints. Shared by the dashboard tests and any inspect test
# that needs a fine-tuned model (e.g. comparing attention before and after fine-tuning).
MICRO_FINETUNE_OVERRIDES = {
    "task": "wiki-topic",
    "task.max_seq_len": 64,
    "train.batch_size": 16,
    "train.num_threads": 1,
    "train.progress": False,
    "train.log_every": 2,
    "train_limit": 64,
    "eval_limit": 24,
    "max_steps": 4,
    "eval_every": 2,
    "checkpoint_every": 2,
}


@pytest.fixture(scope="session")
def micro_finetune_run(tmp_path_factory, cache_dir, micro_run):
    """A finished 4-step wiki-topic fine-tuning of ``micro_run`` (read-only for tests)."""
    from minibert.train.finetune import finetune

    out = tmp_path_factory.mktemp("micro-finetune") / "topic"
    finetune(
        out=out,
        cache_dir=cache_dir,
        overrides={**MICRO_FINETUNE_OVERRIDES, "init": str(micro_run)},
    )
    return out
