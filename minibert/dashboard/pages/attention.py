"""Attention: where each word looks, per layer and head; how it formed; what heads do."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import (
    all_runs,
    clip_text,
    guard,
    help_line,
    pick_model,
    show_figure,
)

DEFAULT_TEXT = "The cat sat on the mat because it was tired."
VIEWS = (
    "Head view",
    "Model view",
    "One head",
    "Over training",
    "Head statistics",
    "Switch heads off",
)

st.title("Attention")
help_line(
    "early layers of a trained model attend to the previous or next word and to [SEP]; later "
    "ones to related words. A model at step 0 spreads attention evenly: replay the checkpoints "
    "to see the patterns form. Heads that are switched off without changing the guesses were "
    "not needed."
)

loaded = None
with guard("Loading the model"):
    loaded = pick_model(all_runs(), key="attention-model")

text = st.text_area("Sentence", DEFAULT_TEXT, key="attention-text", height=80)
pair = None
if st.toggle(
    "Add a second sentence (a pair, as for next-sentence prediction)", key="attention-pair"
):
    pair = st.text_input("Second sentence", "It had been a long day.", key="attention-text-b")

view = st.segmented_control("View", VIEWS, default=VIEWS[0], key="attention-view") or VIEWS[0]
hide_special = st.toggle(
    "Hide [CLS] and [SEP] (they often take most of the weight and wash out the colours)",
    key="attention-hide-special",
)

if loaded is not None:
    st.caption(f"Model: **{loaded.source.label}** ({loaded.config.num_hidden_layers} layers x "
               f"{loaded.config.num_attention_heads} heads)")  # fmt: skip

result = None
with guard("Computing the attention"):
    if loaded is not None:
        from minibert.inspect.attention_maps import attention  # the function (not the module)

        if not text.strip():
            st.warning("Type a sentence to see where its words attend.")
        else:
            text = clip_text(text)
            pair = clip_text(pair) if pair else None
            result = attention(loaded, text, pair or None)
            if result.truncated:
                st.info(
                    f"The text has {result.num_tokens_before_truncation} word pieces; the model "
                    f"reads {result.seq_len}, so the rest was cut."
                )


def _layer_head(result, *, with_head: bool) -> tuple[int, int | None]:
    left, right = st.columns(2)
    layer = left.slider("Layer", 0, result.num_layers - 1, 0, key="attention-layer")
    head = None
    if with_head:
        head = right.slider("Head", 0, result.num_heads - 1, 0, key="attention-head")
    return layer, head


def _ablation(loaded, result) -> None:
    """Switch chosen heads off together (and, for small models, each head alone)."""
    from minibert import viz
    from minibert.inspect import ablate_heads

    layers, heads = result.num_layers, result.num_heads
    names = {f"layer {la} head {h}": (la, h) for la in range(layers) for h in range(heads)}
    off = st.multiselect("Heads to switch off", list(names), key="attention-heads-off")
    each = st.toggle(
        "Also switch each head off alone (one pass over the sentences per head)",
        value=layers * heads <= 16,
        key="attention-ablate-each",
    )
    chosen = tuple(names[name] for name in off)
    if not chosen and not each:
        st.info("Choose heads to switch off, or switch each head off alone.")
        return
    with st.spinner("Measuring the model with heads switched off..."):
        ablation = ablate_heads(loaded, chosen=chosen, each=each)
    left, right = st.columns(2)
    left.metric(f"{ablation.metric_name}, all heads on", f"{ablation.baseline:.3f}")
    if ablation.chosen_score is not None:
        right.metric(
            f"with {len(chosen)} head(s) off",
            f"{ablation.chosen_score:.3f}",
            delta=f"{ablation.chosen_score - ablation.baseline:+.3f}",
            delta_color="normal" if ablation.higher_is_better else "inverse",
        )
    if each:
        show_figure(viz.ablation_chart(ablation), key="attention-ablation")
    st.caption(f"Measured on {ablation.num_examples} predictions.")
    if chosen:
        _fill_mask_with_heads_off(loaded, chosen)


def _fill_mask_with_heads_off(loaded, chosen) -> None:
    """The fill-mask guesses with all heads on and with the chosen ones off, side by side."""
    import minibert.inspect as inspect

    if not getattr(loaded.model, "cls", None) and "MaskedLM" not in type(loaded.model).__name__:
        st.caption(
            "This model has no masked-LM head, so there are no fill-mask guesses to compare."
        )
        return
    sentence = st.text_input(
        "Sentence with [MASK] for the guesses",
        "The river flows through the [MASK] of the city.",
        key="attention-ablation-sentence",
    )
    if "[MASK]" not in sentence:
        st.warning("Put [MASK] in the sentence to see the guesses.")
        return
    on = inspect.fill_mask(loaded, sentence, top_k=5)
    off = inspect.fill_mask(loaded, sentence, top_k=5, heads_off=chosen)
    left, right = st.columns(2)
    for column, title, found in ((left, "All heads on", on), (right, "Chosen heads off", off)):
        column.markdown(f"**{title}**")
        column.dataframe(
            [{"guess": g.token, "probability": round(g.probability, 4)} for g in found.guesses[0]],
            hide_index=True,
        )


if result is not None:
    from minibert import viz

    if view == "Head view":
        with guard("Drawing the head view"):
            layer, _ = _layer_head(result, with_head=False)
            fig = viz.head_view(result, layer, hide_special=hide_special)
            show_figure(fig, key="attention-head-view")
    elif view == "Model view":
        with guard("Drawing the model view"):
            show_figure(
                viz.model_view(result, hide_special=hide_special), key="attention-model-view"
            )
    elif view == "One head":
        with guard("Drawing the heatmap"):
            layer, head = _layer_head(result, with_head=True)
            fig = viz.attention_heatmap(result, layer, head, hide_special=hide_special)
            show_figure(fig, key="attention-heatmap")
    elif view == "Over training":
        with guard("Replaying the checkpoints"):
            source = loaded.source
            if source.run is None:
                st.info(
                    "Replaying needs a run: choose **Run checkpoint** above (MiniLM and saved "
                    "folders have no checkpoints)."
                )
            else:
                from minibert.inspect import attention_over_training

                layer, head = _layer_head(result, with_head=True)
                whole = st.toggle("Every head (model view) instead of one", key="attention-ot-all")
                with st.spinner("Running the sentence through every checkpoint..."):
                    over = attention_over_training(source.run, text, pair or None)
                fig = viz.attention_over_training(
                    over,
                    None if whole else layer,
                    None if whole else head,
                    hide_special=hide_special,
                )
                show_figure(fig, key="attention-over-training")
                st.caption(
                    f"{len(over.checkpoints)} checkpoints: drag the slider under the figure."
                )
    elif view == "Head statistics":
        with guard("Computing head statistics"):
            from minibert.inspect import head_statistics

            with st.spinner("Measuring every head on a set of sentences..."):
                stats = head_statistics(loaded)
            show_figure(viz.head_class_map(stats), key="attention-head-classes")
            st.caption(
                f"Measured on {stats.num_sentences} sentences. Classes: "
                + ", ".join(f"{k} > {v:g}" for k, v in stats.thresholds.items())
            )
    elif view == "Switch heads off":
        with guard("Switching heads off"):
            _ablation(loaded, result)
