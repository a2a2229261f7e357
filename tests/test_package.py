"""The package installs, imports and exposes its command line."""

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
