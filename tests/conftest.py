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
