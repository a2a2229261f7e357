"""The dashboard's wiring with Streamlit's AppTest: every page on a small run folder made by the
tests, its widgets, and the bad inputs of issue 12 (each gets a message, never a traceback)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from streamlit.testing.v1 import AppTest  # noqa: E402

from minibert.dashboard.launch import APP_PATH  # noqa: E402

TIMEOUT = 120  # seconds per script run: the first model load imports transformers


@pytest.fixture(scope="module")
def runs_folder(dashboard_runs):
    return dashboard_runs


@pytest.fixture
def app(runs_folder, cache_dir, monkeypatch):
    os.utime(runs_folder / "live" / "metrics.jsonl")  # "running": written to just now
    monkeypatch.setenv("MINIBERT_RUNS", str(runs_folder))
    monkeypatch.setenv("MINIBERT_CACHE", str(cache_dir))
    return AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT)


def _page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    return at


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _no_traceback(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


# --- Runs -------------------------------------------------------------------------------------


def test_runs_page_lists_runs_with_status_and_draws_curves(app):
    at = app.run()
    _no_traceback(at)
    assert at.title[0].value == "Runs"
    assert "What to look at" in _texts(at.caption)
    table = at.dataframe[0].value
    status = dict(zip(table["run"], table["status"], strict=True))
    assert status["micro"] == "finished" and status["topic"] == "finished"
    assert table["preset"].tolist().count("tiny") >= 2  # settings columns, though "live" has none
    assert status["live"] == "running" and status["dead"] == "failed"
    assert at.multiselect[0].value == ["live"]  # the running run is plotted first
    assert _charts(at) == 1
    at.multiselect[0].set_value(["micro", "dead"]).run()
    at.selectbox(key="runs-curve").set_value("Masked-token accuracy (held-out)").run()
    at.radio(key="runs-x").set_value("tokens seen").run()
    at.toggle(key="runs-log").set_value(True).run()
    _no_traceback(at)
    assert _charts(at) == 1 and not at.error
    # The checkpoint picked here is what the other pages start from.
    at.select_slider(key="runs-checkpoint-micro").set_value(6).run()
    assert at.session_state["checkpoint"] == {"run": "micro", "step": 6}


def test_runs_page_picks_up_appended_lines(app, runs_folder):
    growing = runs_folder / "growing"
    shutil.copytree(runs_folder / "live", growing)  # ends with a partial line
    try:
        at = app.run()
        at.multiselect(key="runs-plot").set_value(["growing"]).run()
        _tail, buffer = at.session_state["metric_tails"]["growing"]
        assert len(buffer) == 10
        with open(growing / "metrics.jsonl", "a") as handle:  # the writer finishes the line
            handle.write('it": "train", "time": 6, "wall_time": 1, "tokens": 1100, "loss": 5.9}\n')
        at.run()
        _no_traceback(at)
        tail, buffer = at.session_state["metric_tails"]["growing"]
        assert len(buffer) == 11 and tail.lines_read == 11  # only the new line was read, once
    finally:
        shutil.rmtree(growing)


def test_runs_page_with_an_empty_or_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_RUNS", str(tmp_path / "missing"))
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT).run()
    _no_traceback(at)
    assert "does not exist" in _texts(at.warning)
    assert "minibert demo" in _texts(at.markdown)
    monkeypatch.setenv("MINIBERT_RUNS", str(tmp_path))
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT).run()
    assert "no runs" in _texts(at.info)


def test_a_run_deleted_while_shown(app, runs_folder):
    doomed = runs_folder / "doomed"
    shutil.copytree(runs_folder / "live", doomed)
    at = app.run()
    at.multiselect[0].set_value(["doomed", "micro"]).run()
    shutil.rmtree(doomed)
    at.run()
    _no_traceback(at)
    assert "doomed" not in at.dataframe[0].value["run"].tolist()


def test_the_presentation_switch(app):
    at = app.run()
    switch = at.toggle(key="presentation")
    assert switch.value is False and "projector" in switch.help
    # AppTest drops sidebar widgets from its tree after a rerun under st.navigation, so what the
    # switch does (24 px text, the projector figure theme) is checked in the browser test.
    from minibert.dashboard.common import presentation_css

    assert "font-size: 24px" in presentation_css()


# --- Attention ----------------------------------------------------------------------------------


def test_attention_page_on_a_run_checkpoint_every_view(app):
    at = app.run()
    at.session_state["checkpoint"] = {"run": "micro", "step": 4}
    at.session_state["run"] = "micro"
    at.switch_page("pages/attention.py").run()
    _no_traceback(at)
    assert at.select_slider(key="attention-model-step").value == 4
    assert _charts(at) == 1, _texts(at.error)
    for view in ("Model view", "One head", "Over training", "Head statistics",
                 "Switch heads off", "Head view"):  # fmt: skip
        at.segmented_control(key="attention-view").set_value(view).run()
        _no_traceback(at)
        assert not at.error, (view, _texts(at.error))
        assert _charts(at) >= 1, view


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("", "Type a sentence"),
        ("word " * 2000, "only the first"),
        ("Emoji 😀 and עברית and العربية and 中文 mixed.", None),
    ],
)
def test_attention_page_bad_text(app, text, expect):
    at = _page(app, "attention")
    at.text_area(key="attention-text").set_value(text).run()
    _no_traceback(at)
    assert not at.error, _texts(at.error)
    if expect:
        assert expect in _texts(at.warning) + _texts(at.info)
    else:
        assert _charts(at) == 1


def test_attention_page_on_a_folder_that_is_not_a_bert(app):
    at = _page(app, "attention")
    at.radio(key="attention-model-kind").set_value("Saved model").run()
    at.selectbox(key="attention-model-folder").set_value("notbert").run()
    _no_traceback(at)
    assert "gpt2" in _texts(at.error)
    # The page keeps working: back to a good model.
    at.radio(key="attention-model-kind").set_value("Run checkpoint").run()
    assert not at.error and _charts(at) == 1


# --- Predictions, Fine-tuning, Data ---------------------------------------------------------------


def test_predictions_page(app):
    at = _page(app, "predictions")
    _no_traceback(at)
    assert not at.error, _texts(at.error)
    assert _charts(at) == 2  # guesses over training, masking lab
    at.text_input(key="predictions-sentence").set_value("No mask here.").run()
    assert "Put [MASK]" in _texts(at.warning)
    at.text_area(key="predictions-lab-text").set_value("   ").run()
    assert "Type a text" in _texts(at.warning)
    _no_traceback(at)


def test_finetuning_page(app):
    at = _page(app, "finetuning")
    at.selectbox(key="finetune-run").set_value("topic").run()
    _no_traceback(at)
    assert not at.error, _texts(at.error)
    assert _charts(at) == 3  # curves, confusion matrix, side by side
    side_by_side = at.dataframe[-1].value
    assert side_by_side["start"].tolist() == ["pretrained (micro)", "scratch"]
    assert len(at.metric) == 3
    at.radio(key="finetune-split").set_value("test").run()
    _no_traceback(at)


def test_data_page(app):
    at = _page(app, "data")
    assert "`live`" in _texts(at.caption)  # no data recorded yet: named, not offered
    assert "live" not in at.selectbox(key="data-run").options
    at.selectbox(key="data-run").set_value("micro").run()
    _no_traceback(at)
    assert not at.error, _texts(at.error)
    steps = at.dataframe[0].value
    assert "near_dedup" in steps["step"].tolist()
    assert "Tokenizer" in _texts(at.subheader)


def test_every_page_survives_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIBERT_RUNS", str(tmp_path))
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT).run()
    for page in ("predictions", "finetuning", "data"):
        at.switch_page(f"pages/{page}.py").run()
        _no_traceback(at)
        assert not at.error, (page, _texts(at.error))
        assert at.info, page


def test_app_ships_inside_the_package():
    assert APP_PATH.is_file()
    pages = sorted(p.name for p in (APP_PATH.parent / "pages").glob("*.py"))
    assert pages == ["attention.py", "data.py", "finetuning.py", "predictions.py", "runs.py"]
    assert Path(__file__).parents[1].joinpath("dashboard", "README.md").is_file()
