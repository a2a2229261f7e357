"""Data: the corpus a run trained on, what cleaning removed and why, the tokenizer's fit."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import all_runs, guard, help_line, pick_run

st.title("Data")
help_line(
    "each cleaning step removes documents for a stated reason (open the examples to judge the "
    "rule); near-duplicates are documents that share most of their 5-word shingles. Word "
    "coverage says how many running words the tokenizer keeps whole."
)


@st.cache_resource(max_entries=8, show_spinner="Preparing the data report (a cache hit takes seconds)...")
def _report(run_path: str, fingerprint: str):
    """One report per (run, data fingerprint): the data cache makes it cheap after the first."""
    from minibert.inspect.runs import data_report

    return data_report(run_path)


run = None
with guard("Listing the runs"):
    runs = [r for r in all_runs() if r.kind == "pretrain"]
    if not runs:
        st.info(
            "No pretraining run in this folder yet (fine-tuning runs train on a task, not on "
            "the corpus). Make one with `minibert pretrain --preset tiny --out runs/tiny` or "
            "`minibert demo`."
        )
    else:
        run = pick_run("Pretraining run", runs, key="data-run")

if run is not None:
    data = run.info.get("data", {})
    with guard("Reading run.json"):
        a, b, c, d = st.columns(4)
        a.metric("Corpus", str(data.get("data_config", {}).get("corpus", "?")))
        b.metric("Training documents", f"{data.get('train_documents', 0):,}")
        c.metric("Training tokens", f"{data.get('train_tokens', 0):,}")
        d.metric("Vocabulary", f"{data.get('data_config', {}).get('vocab_size', 0):,}")
        st.caption(
            f"Fingerprints: data `{str(data.get('data_fingerprint', '?'))[:12]}`, corpus "
            f"`{str(data.get('corpus_fingerprint', '?'))[:12]}`, tokenizer "
            f"`{str(data.get('tokenizer_fingerprint', '?'))[:12]}`"
        )

    report = None
    with guard("Preparing the data report"):
        report = _report(str(run.path), str(data.get("data_fingerprint", "")))
        if not report.matches_run:
            st.warning(
                "The data prepared today differs from what this run recorded (the corpus or "
                "the cleaning code changed): the report below describes today's data."
            )

    if report is not None:
        with guard("Showing the cleaning steps"):
            st.subheader("What each cleaning step removed")
            st.dataframe(report.step_rows(), hide_index=True, width="stretch")
            for step in report.steps:
                if step.examples:
                    with st.expander(f"{step.name}: {len(step.examples)} example(s) removed"):
                        st.caption(step.description)
                        for example in step.examples:
                            st.markdown(f"**{example.reason}** ({example.doc_id}) {example.detail}")
                            st.text(example.snippet[:600])

        with guard("Showing the duplicates"):
            st.subheader("Duplicates")
            for step in report.duplicates():
                st.markdown(
                    f"**{step.name}**: {step.docs_removed} of {step.docs_in} documents removed"
                    + (f" ({step.description})" if step.description else "")
                )

        with guard("Showing the corpus statistics"):
            st.subheader("Corpus statistics")
            rows = []
            for name, stats in report.stats.items():
                rows.append(
                    {
                        "corpus": name,
                        "documents": stats.documents,
                        "sentences": stats.sentences,
                        "words": stats.words,
                        "types": stats.types,
                        "type/token": round(stats.type_token_ratio, 4),
                        "words/document (median)": stats.words_per_document.get("median"),
                        "words/sentence (median)": stats.words_per_sentence.get("median"),
                    }
                )
            st.dataframe(rows, hide_index=True, width="stretch")
            which = st.radio("Histogram of", list(report.stats), horizontal=True, key="data-hist")
            hist = report.stats[which].sentence_length_histogram
            edges, counts = hist.get("bin_edges", []), hist.get("counts", [])
            if counts:
                st.bar_chart(
                    {"words per sentence": [f"{e:.0f}" for e in edges[:-1]], "sentences": counts},
                    x="words per sentence",
                    y="sentences",
                )

        with guard("Showing the tokenizer"):
            st.subheader("Tokenizer")
            if report.tokenizer is None:
                st.info("No tokenizer report in the data cache.")
            else:
                st.code(str(report.tokenizer), language=None)
