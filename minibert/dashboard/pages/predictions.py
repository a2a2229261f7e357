"""Predictions: the model's guesses for masked words, across checkpoints, and the masking lab."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import (
    all_runs,
    clip_text,
    guard,
    help_line,
    pick_model,
    pick_run,
    show_figure,
)

DEFAULT_SENTENCE = "The river flows through the [MASK] of the city."
DEFAULT_LAB_TEXT = (
    "The river flows through the centre of the city and into the sea near the old harbour."
)

st.title("Predictions")
help_line(
    "early checkpoints guess the most frequent words (the, of, a) everywhere; later ones guess "
    "words that fit the sentence. In the masking lab, [MASK] positions are the hard ones: "
    "random and kept positions are easier, because the model sees a word there."
)

runs = []
with guard("Listing the runs"):
    runs = all_runs()

st.header("Guesses across checkpoints")
with guard("Filling the masks"):
    candidates = [r for r in runs if r.num_checkpoints and r.kind in ("pretrain", "unknown")]
    if not candidates:
        st.info("No pretraining run with checkpoints yet; make one (see the Runs page).")
    else:
        run = pick_run("Run", candidates, key="predictions-run")
        sentence = st.text_input(
            "Sentence with [MASK] where a word should be guessed",
            DEFAULT_SENTENCE,
            key="predictions-sentence",
        )
        top_k = st.slider("Guesses per mask", 1, 10, 5, key="predictions-top-k")
        if run is not None:
            if not sentence.strip():
                st.warning("Type a sentence with [MASK] in it.")
            elif "[MASK]" not in sentence:
                st.warning("Put [MASK] where the model should guess a word, e.g. "
                           f"“{DEFAULT_SENTENCE}”.")  # fmt: skip
            else:
                from minibert import viz
                from minibert.inspect import fill_mask_over_training

                sentence = clip_text(sentence)
                with st.spinner("Asking every checkpoint..."):
                    over = fill_mask_over_training(run.path, sentence, top_k=top_k)
                show_figure(viz.fill_mask_over_training(over), key="predictions-over-training")

st.header("Masking lab")
st.caption(
    "BERT chooses 15% of the word pieces; of those, 80% become [MASK], 10% a random piece and "
    "10% stay as they are (Devlin et al. 2019, Sec. 3.1). The model must recover the original."
)
with guard("Running the masking lab"):
    loaded = pick_model(runs, key="predictions-lab-model")
    text = st.text_area("Text", DEFAULT_LAB_TEXT, key="predictions-lab-text", height=80)
    left, right = st.columns(2)
    seed = left.number_input("Seed (another draw of positions)", 0, 10_000, 0, key="lab-seed")
    probability = right.slider(
        "Share of pieces chosen", 0.05, 0.5, 0.15, step=0.05, key="lab-probability"
    )
    if loaded is not None:
        if not text.strip():
            st.warning("Type a text to mask.")
        else:
            from minibert import viz
            from minibert.inspect import masking_lab

            lab = masking_lab(loaded, clip_text(text), seed=int(seed), mlm_probability=probability)
            show_figure(viz.masking_lab_table(lab), key="predictions-lab-table")
            rows = [
                {
                    "kind": kind,
                    "positions": lab.count_by_kind.get(kind, 0),
                    "accuracy": lab.accuracy_by_kind.get(kind),
                }
                for kind in ("mask", "random", "kept", "all")
            ]
            st.dataframe(rows, hide_index=True)
