"""Runs: every run in the folder, its settings and status, and live training curves."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import (
    all_runs,
    guard,
    help_line,
    no_runs_message,
    open_run,
    show_figure,
)
from minibert.inspect.runs import CurveBuffer, MetricsTail, list_run_checkpoints, nearest_checkpoint

# Curve name -> (split, metric key): what the trainer writes in metrics.jsonl.
CURVES = {
    "Training loss": ("train", "loss"),
    "Held-out loss": ("eval", "loss"),
    "Masked-token accuracy (held-out)": ("eval", "mlm_accuracy"),
    "Masked-token accuracy (training)": ("train", "mlm_accuracy"),
    "Learning rate": ("train", "lr"),
    "Held-out accuracy (fine-tuning)": ("eval", "accuracy"),
    "Held-out macro-F1 (fine-tuning)": ("eval", "macro_f1"),
    "Tokens per second": ("train", "tokens_per_second"),
}
X_AXES = {"step": "step", "tokens seen": "tokens", "training time (s)": "time"}
REFRESH_SECONDS = 2.0
MAX_POINTS = 2000  # per curve: what a browser draws smoothly; spikes survive (min/max buckets)

st.title("Runs")
help_line(
    "training loss falls fast, then slowly; held-out loss should follow it (a gap that widens "
    "is overfitting). Masked-token accuracy climbs from 0 as the model learns which words fit. "
    "Click a point to pick the nearest checkpoint for the other pages."
)


def _tails() -> dict[str, tuple[MetricsTail, CurveBuffer]]:
    return st.session_state.setdefault("metric_tails", {})


def _read_new(run) -> CurveBuffer:
    """Append the lines written since the last refresh to this run's buffer (and only those)."""
    tails = _tails()
    if run.name not in tails or tails[run.name][0].path.parent != run.path:
        tails[run.name] = (MetricsTail(run.path), CurveBuffer())
    tail, buffer = tails[run.name]
    new = tail.read_new()
    if tail.reset:
        buffer.clear()
    buffer.extend(new)
    return buffer


# Defaults, so the rest of the page still draws if listing the runs fails.
runs, chosen, live, paused = [], [], False, False
curve, x_label, log_y = next(iter(CURVES)), next(iter(X_AXES)), False
with guard("Listing the runs"):
    runs = all_runs()
    if not runs:
        no_runs_message()

        @st.fragment(run_every=REFRESH_SECONDS)
        def _wait_for_runs() -> None:
            if all_runs():
                st.rerun()

        _wait_for_runs()
        st.stop()

    st.dataframe([r.as_row() for r in runs], hide_index=True, width="stretch")
    names = [r.name for r in runs]
    running = [r.name for r in runs if r.status == "running"]
    remembered = [n for n in st.session_state.get("plotted_runs", []) if n in names]
    default = remembered or running[:1] or names[:1]
    chosen = st.multiselect("Runs to plot", names, default=default, key="runs-plot")
    st.session_state["plotted_runs"] = chosen
    if chosen and st.session_state.get("run") not in chosen:
        st.session_state["run"] = chosen[0]

    left, middle, right = st.columns([2, 2, 1])
    curve = left.selectbox("Curve", list(CURVES), key="runs-curve")
    x_label = middle.radio("x axis", list(X_AXES), horizontal=True, key="runs-x")
    log_y = right.toggle("Log scale", key="runs-log")
    live = any(r.status == "running" for r in runs if r.name in chosen)
    paused = right.toggle("Pause live updates", key="runs-pause", disabled=not live)


def _draw_curves() -> None:
    from minibert import viz

    split, metric = CURVES[curve]
    x = X_AXES[x_label]
    series: dict[str, list[dict]] = {}
    for name in chosen:
        run = open_run(name)  # a deleted run gets its message and is skipped
        if run is None:
            continue
        rows = _read_new(run).rows(split, metric, x, MAX_POINTS)
        if rows:
            series[name] = rows
    if not series:
        st.info(
            f"No `{metric}` values in the `{split}` lines of the chosen runs yet"
            + (
                " (a run that is starting writes its first line after a few steps)."
                if live
                else "."
            )
        )
        return
    fig = viz.training_curves(series, y=metric, x=x, log_y=log_y)
    fig.update_layout(title=curve)
    event = show_figure(fig, key="runs-curves", on_select="rerun", selection_mode="points")
    _pick_checkpoint(event, series, x)


def _pick_checkpoint(event, series: dict[str, list[dict]], x: str) -> None:
    """A clicked point -> the nearest checkpoint of that run, remembered for the other pages."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:
        return
    point = points[0]
    names = list(series)
    name = names[min(int(point.get("curve_number", 0)), len(names) - 1)]
    rows = series[name]
    where = point.get("x")
    if where is None or not rows:
        return
    nearest_row = min(rows, key=lambda r: abs(r[x] - float(where)))
    run = open_run(name)
    found = None if run is None else nearest_checkpoint(run.path, nearest_row["step"])
    if found is None:
        st.info(f"`{name}` has no checkpoint yet to pick.")
        return
    picked = {"run": name, "step": found[0]}
    if st.session_state.get("checkpoint") != picked:
        st.session_state["checkpoint"] = picked
        st.session_state["run"] = name
        st.session_state[f"runs-checkpoint-{name}"] = found[0]
        st.rerun()  # the whole page, so the checkpoint slider below shows the pick


@st.fragment(run_every=REFRESH_SECONDS if live and not paused else None)
def live_curves() -> None:
    with guard("Drawing the curves"):
        if chosen:
            _draw_curves()
        else:
            st.info("Choose one or more runs to plot.")


live_curves()

with guard("Choosing a checkpoint"):
    if chosen:
        remembered_run = st.session_state.get("run")
        run = open_run(remembered_run if remembered_run in chosen else chosen[0])
        steps = [] if run is None else [s for s, _ in list_run_checkpoints(run.path)]
        if run is not None and steps:
            key = f"runs-checkpoint-{run.name}"
            if st.session_state.get(key) not in steps:
                st.session_state[key] = steps[-1]
            step = st.select_slider(
                f"Checkpoint of `{run.name}` for the other pages (or click a point on the curve)",
                steps,
                key=key,
            )
            st.session_state["checkpoint"] = {"run": run.name, "step": step}
            st.caption(
                f"Attention and Predictions start at `{run.name}` step {step} "
                f"({len(steps)} checkpoints: {steps[0]} to {steps[-1]})."
            )
        elif run is not None:
            st.caption(f"`{run.name}` has no complete checkpoint yet.")

with guard("Showing the run's settings"), st.expander("Settings of the chosen runs (run.json)"):
    for name in chosen:
        run = open_run(name)
        if run is not None:
            st.markdown(f"**{run.name}**: {run.status} ({run.status_detail})")
            st.json(run.info or {"run.json": "not written yet"}, expanded=False)
