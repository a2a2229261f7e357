"""Config files and ``--key value`` overrides mapped onto config dataclasses.

A run's configuration is a tree of dataclasses (for pretraining: model, data, objective, optim,
train). Users change it in three layers, each overriding the one before:

1. the dataclass defaults (the documented recipe),
2. a YAML or JSON file (``--config file.yaml``), nested by section or flat with dotted keys,
3. command-line overrides (``--lr 3e-4``, ``--optim.lr 3e-4``, ``--model.num_hidden_layers 4``).

A key is either a dotted path (``optim.lr``) or a bare field name when exactly one field in the
tree has that name (``lr``) or that the config declares in ``KEY_ALIASES``. Hyphens and
underscores are interchangeable (``--max-steps``).
Values given as strings are converted with the field's type annotation. An unknown key fails with
the list of valid keys; an ambiguous bare name fails with the dotted names it could mean. Nothing
here is specific to pretraining: the fine-tuning verb uses the same functions on its own config.

The machinery works through ``dataclasses.replace``, so every dataclass's ``__post_init__``
validation runs again on the overridden values.

Why not a library: jsonargparse 4.53, tyro 1.0 and OmegaConf 2.4 were tried on these configs.
Each reads dotted keys and ``Literal`` choices, all but tyro a YAML file; none resolves a bare
name (``--lr``, ``--patience``) or an alias (``--seed`` is ``train.seed``), takes ``1e3`` for
an integer or ``0.8,0.95`` for a tuple, or lists the valid keys after a typo. jsonargparse and
tyro only parse command lines, so the Python API (``finetune(overrides={"lr": 3e-4})`` in
notebooks and the demo), run.json round trips and ``preset``-before-``model.*`` would still need
this module: it is the one engine behind the command line, config files and Python calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "accept_overrides",
    "apply_overrides",
    "config_from_dict",
    "config_keys",
    "config_to_dict",
    "convert_value",
    "describe_keys",
    "flatten_config_mapping",
    "load_config_file",
    "parse_args_with_overrides",
    "parse_cli_overrides",
    "resolve_key",
]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_NONE = {"none", "null", "~"}


# --------------------------------------------------------------------------------------------
# Walking the tree of dataclasses
# --------------------------------------------------------------------------------------------


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _init_fields(config: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(config) if f.init]


def _type_hints(config: Any) -> dict[str, Any]:
    # Resolves string annotations (``from __future__ import annotations``) to real types.
    return typing.get_type_hints(type(config))


def config_keys(config: Any, prefix: str = "") -> list[str]:
    """Every settable leaf of a config tree as a dotted key, in declaration order."""
    keys: list[str] = []
    for field in _init_fields(config):
        value = getattr(config, field.name)
        if _is_dataclass_instance(value):
            keys.extend(config_keys(value, f"{prefix}{field.name}."))
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def _normalize(key: str) -> str:
    return key.strip().lstrip("-").replace("-", "_")


def resolve_key(config: Any, key: str) -> str:
    """Map a user's key (dotted, bare or hyphenated) onto one dotted key of ``config``.

    A config class may declare ``KEY_ALIASES`` (a ``ClassVar`` dict of bare name -> dotted key)
    to settle names that several sections share, e.g. ``seed`` -> ``train.seed``.
    Raises ``ValueError`` naming the valid keys when the key is unknown, and the candidates
    when a bare name matches fields in several sections.
    """
    wanted = _normalize(key)
    keys = config_keys(config)
    if wanted in keys:
        return wanted
    aliases = getattr(config, "KEY_ALIASES", None) or {}
    if wanted in aliases:
        return aliases[wanted]
    section_names = {k.split(".", 1)[0] for k in keys if "." in k}
    if wanted in section_names:
        raise ValueError(
            f"{key!r} is a section, not a setting; set one of its fields, e.g. "
            f"{', '.join(k for k in keys if k.startswith(wanted + '.'))[:300]}"
        )
    matches = [k for k in keys if k.rsplit(".", 1)[-1] == wanted]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(
            f"{key!r} is ambiguous: it could mean {', '.join(matches)}. Use the dotted name."
        )
    close = difflib.get_close_matches(wanted, keys + list(aliases), n=3, cutoff=0.75)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"unknown config key {key!r}.{hint} Valid keys: {', '.join(keys)}")


# --------------------------------------------------------------------------------------------
# Converting values to a field's type
# --------------------------------------------------------------------------------------------


def convert_value(value: Any, annotation: Any, *, key: str = "value") -> Any:
    """Convert ``value`` (often a string from the command line) to the annotated type.

    Supports ``bool``, ``int``, ``float``, ``str``, ``Path``, ``Optional[...]``/``X | None``,
    ``Literal[...]``, ``tuple[...]``, ``list[...]`` and ``dict[...]`` (the last three from
    JSON text or from already-parsed YAML/JSON values).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        is_none = value is None or (isinstance(value, str) and value.strip().lower() in _NONE)
        if is_none and len(non_none) < len(args):
            return None
        errors = []
        for candidate in non_none:
            try:
                return convert_value(value, candidate, key=key)
            except (TypeError, ValueError) as err:
                errors.append(str(err))
        raise ValueError(f"{key}: cannot read {value!r} as {annotation}: {'; '.join(errors)}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{key}: {value!r} is not a boolean (use true or false)")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{key}: {value!r} is a boolean, not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)
            except ValueError:
                # Allow "1e4" for step counts, but only when it is a whole number.
                try:
                    number = float(text)
                except ValueError:
                    number = float("nan")
                if number == number and number.is_integer():
                    return int(number)
        raise ValueError(f"{key}: {value!r} is not an integer")
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{key}: {value!r} is a boolean, not a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{key}: {value!r} is not a number")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{key}: {value!r} is not a string")
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return Path(value)
    if origin in (tuple, list, set, frozenset) or annotation in (tuple, list):
        items = _as_sequence(value, key)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ValueError(f"{key}: expected {len(args)} values, got {len(items)}")
            return tuple(convert_value(v, a, key=key) for v, a in zip(items, args, strict=True))
        item_type = args[0] if args else Any
        converted = [convert_value(v, item_type, key=key) for v in items]
        container = origin or annotation
        return container(converted)
    if origin is dict or annotation is dict:
        mapping = _as_mapping(value, key)
        key_type, value_type = args if args else (Any, Any)
        return {
            convert_value(k, key_type, key=key): convert_value(v, value_type, key=key)
            for k, v in mapping.items()
        }
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise TypeError(f"{key}: no conversion to {annotation!r} for {value!r}")


def _as_sequence(value: Any, key: str) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise ValueError(f"{key}: {value!r} is not a list")
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError(f"{key}: {value!r} is not a list (write 1,2 or [1, 2])")


def _as_mapping(value: Any, key: str) -> Mapping[Any, Any]:
    if isinstance(value, str):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            return parsed
    elif isinstance(value, Mapping):
        return value
    raise ValueError(f'{key}: {value!r} is not a mapping (write JSON, e.g. \'{{"0": "neg"}}\')')


# --------------------------------------------------------------------------------------------
# Applying overrides
# --------------------------------------------------------------------------------------------


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """Return a copy of ``config`` with ``overrides`` (key -> value) applied.

    Keys go through :func:`resolve_key`; values through :func:`convert_value`. Each touched
    dataclass is rebuilt with ``dataclasses.replace``, so its validation runs again.
    """
    resolved: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = resolve_key(config, key)
        resolved[dotted] = value
    return _apply_resolved(config, resolved, prefix="")


def _apply_resolved(config: Any, resolved: Mapping[str, Any], prefix: str) -> Any:
    hints = _type_hints(config)
    changes: dict[str, Any] = {}
    for field in _init_fields(config):
        dotted = f"{prefix}{field.name}"
        current = getattr(config, field.name)
        if _is_dataclass_instance(current):
            if any(k.startswith(dotted + ".") for k in resolved):
                changes[field.name] = _apply_resolved(current, resolved, dotted + ".")
        elif dotted in resolved:
            changes[field.name] = convert_value(resolved[dotted], hints[field.name], key=dotted)
    return dataclasses.replace(config, **changes) if changes else config


# --------------------------------------------------------------------------------------------
# Config files and command-line tokens
# --------------------------------------------------------------------------------------------


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file {path} must end in .yaml, .yml or .json")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, not {type(data)}")
    return data


def flatten_config_mapping(config: Any, nested: Mapping[str, Any], prefix: str = "") -> dict:
    """Flatten a nested mapping (sections as sub-dicts) into dotted keys, guided by ``config``.

    Only dataclass-valued fields are descended into, so a ``dict`` setting such as
    ``model.id2label`` stays one value. Keys that are not sections are kept as written and
    checked later by :func:`apply_overrides`.
    """
    sections = {
        f.name: getattr(config, f.name)
        for f in _init_fields(config)
        if _is_dataclass_instance(getattr(config, f.name))
    }
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = _normalize(str(key))
        if name in sections and isinstance(value, Mapping):
            flat.update(flatten_config_mapping(sections[name], value, prefix=f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def parse_cli_overrides(tokens: Iterable[str]) -> dict[str, str | bool]:
    """Turn leftover command-line tokens into ``{key: value}``.

    Accepts ``--key value``, ``--key=value``, a bare ``--flag`` (true) and ``--no-flag``
    (false). Anything else (a stray positional) is a ``ValueError``.
    """
    tokens = list(tokens)
    overrides: dict[str, str | bool] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise ValueError(f"unexpected argument {token!r}: settings are written --key value")
        body = token[2:]
        if "=" in body:
            key, value = body.split("=", 1)
            overrides[key] = value
            i += 1
            continue
        next_is_value = i + 1 < len(tokens) and not _looks_like_option(tokens[i + 1])
        if next_is_value:
            overrides[body] = tokens[i + 1]
            i += 2
        elif body.startswith("no-") or body.startswith("no_"):
            overrides[body[3:]] = False
            i += 1
        else:
            overrides[body] = True
            i += 1
    return overrides


def _looks_like_option(token: str) -> bool:
    # "--lr" is an option; "-1" or "-1e-3" are values.
    if not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


# --------------------------------------------------------------------------------------------
# To and from plain dicts (run.json)
# --------------------------------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a config tree (tuples become lists, paths strings)."""
    out: dict[str, Any] = {}
    for field in _init_fields(config):
        out[field.name] = _plain(getattr(config, field.name))
    return out


def _plain(value: Any) -> Any:
    if _is_dataclass_instance(value):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config tree of type ``cls`` from :func:`config_to_dict` output.

    Unknown keys are an error (a run.json written by a different version says so clearly).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} settings {unknown}; valid ones: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
            kwargs[name] = config_from_dict(annotation, value)
        else:
            kwargs[name] = convert_value(value, annotation, key=f"{cls.__name__}.{name}")
    return cls(**kwargs)


def describe_keys(config: Any, width: int = 100) -> str:
    """A readable list of every key and its current value, for ``--help`` epilogs."""
    lines = []
    for key in config_keys(config):
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        lines.append(f"  --{key} {json.dumps(_plain(value))}"[:width])
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# argparse: let a verb take free-form --key value settings
# --------------------------------------------------------------------------------------------


def accept_overrides(parser: argparse.ArgumentParser) -> None:
    """Mark ``parser`` (a verb's sub-parser) as taking free-form ``--key value`` settings.

    argparse only accepts options declared in advance, and a config tree has too many (and
    bare and alias spellings) to declare them all. So the command line is read by
    :func:`parse_args_with_overrides`, which gives the options argparse did not recognise to a
    verb marked here, as ``namespace.overrides`` (strings, for :func:`parse_cli_overrides`);
    the verb checks each key against its config, and an unknown one fails with the list of
    valid keys, which argparse's "unrecognized arguments" cannot give.
    """
    parser.set_defaults(overrides=[])


def parse_args_with_overrides(
    parser: argparse.ArgumentParser, args: Sequence[str] | None = None
) -> argparse.Namespace:
    """``parser.parse_args(args)``, except that options argparse does not know become
    ``namespace.overrides`` when the chosen verb was marked with :func:`accept_overrides`.

    For any other verb they are an error, exactly as with ``parse_args``.
    """
    namespace, unknown = parser.parse_known_args(args)
    if unknown:
        if not isinstance(getattr(namespace, "overrides", None), list):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        namespace.overrides = unknown
    return namespace
