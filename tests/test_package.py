"""The package installs, imports and exposes its command line."""

import os
import subprocess
import sys

import minibert


def test_version_is_a_string():
    assert isinstance(minibert.__version__, str)


def test_unknown_public_name_is_an_attribute_error():
    try:
        minibert.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_cli_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "minibert", "--help"], capture_output=True, text=True, check=True
    )
    assert "minibert" in out.stdout


def test_cli_reports_an_unreachable_hub_in_one_line_not_a_traceback():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "minibert", "prepare-data", "--corpus", "wikitext-103"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "Offline alternatives" in out.stderr and "wiki-sample" in out.stderr
