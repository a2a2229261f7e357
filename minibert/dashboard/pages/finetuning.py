"""Fine-tuning: a fine-tuning run's curves and scores, its mistakes, and runs side by side."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import all_runs, guard, help_line, pick_run, show_figure
from minibert.inspect.runs import (
    CurveBuffer,
    compare_finetune_runs,
    finetune_report,
    read_metrics_table,
)

CURVES = {
    "Held-out macro-F1": ("eval", "macro_f1"),
    "Held-out accuracy": ("eval", "accuracy"),
    "Held-out loss": ("eval", "loss"),
    "Training loss": ("train", "loss"),
}

st.title("Fine-tuning")
help_line(
    "macro-F1 weighs every class equally, so a model that always answers the biggest class "
    "scores low. Compare the run that started from pretrained weights with the one from "
    "scratch: the gap is what pretraining bought. Read the mistakes: are they plausible?"
)

runs = []
with guard("Listing the runs"):
    runs = [r for r in all_runs() if r.kind == "finetune"]
    if not runs:
        st.info(
            "No fine-tuning run in this folder yet. Make one with\n\n"
            "```\nminibert finetune --task wiki-topic --init runs/tiny --out runs/topic\n```\n"
            "or run `minibert demo`, which fine-tunes from pretrained and from random weights."
        )

run = None
with guard("Reading the run"):
    if runs:
        run = pick_run("Fine-tuning run", runs, key="finetune-run")

if run is not None:
    report = None
    with guard("Reading the results"):
        report = finetune_report(run.path)
        st.caption(f"Status: **{run.status}** ({run.status_detail})")
        if not report.complete:
            st.info(
                "This run has no results yet (results.json is written after training ends). "
                "Its curves are below."
            )

    with guard("Drawing the curves"):
        from minibert import viz

        curve = st.selectbox("Curve", list(CURVES), key="finetune-curve")
        split, metric = CURVES[curve]
        buffer = CurveBuffer()
        buffer.extend(read_metrics_table(run.path))
        rows = buffer.rows(split, metric)
        if rows:
            fig = viz.training_curves({run.name: rows}, y=metric, x="step")
            fig.update_layout(title=curve)
            show_figure(fig, key="finetune-curves")
        else:
            st.info(f"No `{metric}` in the `{split}` lines yet.")

    if report is not None and report.complete:
        with guard("Showing the scores"):
            splits = list(report.splits)
            split_name = st.radio("Split", splits, horizontal=True, key="finetune-split")
            scores = report.splits[split_name]
            a, b, c = st.columns(3)
            a.metric("Accuracy", f"{scores['accuracy']:.3f}")
            b.metric("Macro-F1", f"{scores['macro_f1']:.3f}")
            c.metric("Examples", scores.get("count", 0))
            left, right = st.columns([3, 2])
            with left:
                fig = viz.confusion_matrix(scores["confusion"], report.labels)
                show_figure(fig, key="finetune-confusion")
            with right:
                st.dataframe(report.per_class_rows(split_name), hide_index=True)

        with guard("Listing the mistakes"):
            mistakes = report.mistakes.get(split_name, [])
            st.subheader(f"Examples it gets wrong ({len(mistakes)} shown)")
            if not mistakes:
                st.success("No mistakes in this split.")
            elif report.kind == "sequence":
                st.dataframe(
                    [
                        {
                            "gold": m.get("label"),
                            "predicted": m.get("prediction"),
                            "confidence": max((m.get("probabilities") or {"": 0}).values()),
                            "text": m.get("text", "")[:300],
                        }
                        for m in mistakes
                    ],
                    hide_index=True,
                    width="stretch",
                )
            else:
                st.dataframe(
                    [
                        {
                            "words": " ".join(m.get("words", []))[:300],
                            "gold tags": " ".join(m.get("tags", [])),
                            "predicted": " ".join(m.get("predicted", [])),
                        }
                        for m in mistakes
                    ],
                    hide_index=True,
                    width="stretch",
                )

    with guard("Comparing runs"):
        comparison = compare_finetune_runs(runs, run)
        if len(comparison) > 1:
            st.subheader("Side by side: same task, different starting points")
            st.dataframe([row.as_row() for row in comparison], hide_index=True, width="stretch")
            series = {}
            for row in comparison:
                buffer = CurveBuffer()
                buffer.extend(read_metrics_table(row.path))
                points = buffer.rows("eval", "macro_f1")
                if points:
                    series[f"{row.name} ({row.start})"] = points
            if series:
                fig = viz.training_curves(series, y="macro_f1", x="step")
                fig.update_layout(title="Held-out macro-F1")
                show_figure(fig, key="finetune-compare")
        else:
            st.caption(
                "Runs on the same task from other starting points (scratch, pretrained, "
                "MiniLM) appear here side by side when the folder has them."
            )
