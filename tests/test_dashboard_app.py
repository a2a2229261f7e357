"""The dashboard's wiring with Streamlit's AppTest: every page on a small run folder made by the
tests, its widgets, and the bad inputs of issue 12 (each gets a message, never a traceback)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from streamlit.testing.v1 import AppTest  # noqa: E402

from minibert.dashboard.launch import APP_PATH  # noqa: E402

TIMEOUT = 120  # seconds per script run: the first model load imports transformers


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory, micro_run, micro_finetune_run):
    """runs/: micro (pretraining, 6 checkpoints), topic (fine-tuning), live (being written),
    dead (killed: no stop event, silent for an hour), notbert (a model folder of another kind)."""
    root = tmp_path_factory.mktemp("dashboard") / "runs"
    root.mkdir()
    shutil.copytree(micro_run, root / "micro")
    shutil.copytree(micro_finetune_run, root / "topic")
    live = root / "live"
    live.mkdir()
    (live / "run.json").write_text(json.dumps({"kind": "pretrain", "name": "live"}))
    lines = [
        {"step": s, "split": "train", "time": s * 0.5, "wall_time": time.time(), "tokens": 100 * s,
         "loss": 7.0 - s * 0.1, "lr": 1e-3}
        for s in range(1, 11)
    ]  # fmt: skip
    (live / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines) + '{"step": 11, "spl'  # a partial line
    )
    dead = root / "dead"
    shutil.copytree(micro_run, dead)
    text = (dead / "metrics.jsonl").read_text().splitlines()
    (dead / "metrics.jsonl").write_text("\n".join(text[:-1]) + "\n")  # no stop event
    old = time.time() - 3600
    for path in [dead, *dead.rglob("*")]:
        import os

        os.utime(path, (old, old))
    (root / "notbert").mkdir()
    (root / "notbert" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (root / "micro" / "checkpoints" / ".tmp-step-000014-99").mkdir()  # a save in progress
    return root


@pytest.fixture
def app(runs_folder, cache_dir, monkeypatch):
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
    at = app.run()
    tails = at.session_state["metric_tails"]
    tail, buffer = tails["live"]
    before = len(buffer)
    with open(runs_folder / "live" / "metrics.jsonl", "a") as handle:
        handle.write('it": "train", "time": 6, "wall_time": 1, "tokens": 1100, "loss": 5.9}\n')
    at.run()
    _no_traceback(at)
    tail, buffer = at.session_state["metric_tails"]["live"]
    assert len(buffer) == before + 1  # only the completed line was read, once


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
    at.toggle(key="presentation").set_value(True).run()
    _no_traceback(at)
    assert any("font-size: 24px" in str(m.value) for m in at.markdown)
    from minibert.viz.theme import current_theme, use_theme

    assert current_theme().name == "presentation"
    use_theme("default")


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
    _no_traceback(at)
    assert not at.error, _texts(at.error)
    assert _charts(at) == 2  # curves + confusion matrix
    assert len(at.metric) == 3
    at.radio(key="finetune-split").set_value("test").run()
    _no_traceback(at)


def test_data_page(app):
    at = _page(app, "data")
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
