"""Test-wide settings: nothing in the suite may reach a hub."""

import os

# Set before transformers/datasets/huggingface_hub are imported by any test module, so a
# code path that would download fails at once instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
