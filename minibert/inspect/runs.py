"""Reading run directories for people who watch training: listing, status, curves, results.

A run directory (see :mod:`minibert.train.rundir`) is written by one training process and read
by any number of watchers (the dashboard, a notebook) *while* it is written. Everything here
only reads, and tolerates what a live or dead writer leaves behind: a partial last line in
``metrics.jsonl``, a ``.tmp-`` checkpoint folder, a run deleted while it is shown.

    runs = list_runs("runs")                      # every run under the folder, newest first
    run = read_run("runs/tiny")                   # settings, status, last step
    rows = read_metrics_table("runs/tiny", split="eval")
    tail = MetricsTail("runs/tiny"); tail.read_new()   # only the lines added since last time
    report = finetune_report("runs/topic")        # per-class scores, confusion, mistakes

**Status.** Training writes no pid or lock file; the metrics log says how a run ended. The
trainer writes an ``event`` line ``{"event": "stop", "reason": ...}`` when it ends on its own
(``max_steps``, ``time_budget``, ``early_stopping``) or on SIGINT/SIGTERM (``signal:SIGTERM``),
and ``{"event": "nonfinite_loss"}`` before it raises on a NaN loss. A run with none of these is
either still training (its files changed recently) or died without a word (``kill -9``, a
crash, a power cut): :func:`run_status` tells the two apart by how long the run has been
silent compared with how often it usually writes.

**Path safety.** The dashboard names runs by paths relative to one runs folder;
:func:`resolve_inside` turns such a name into a path and refuses anything that leaves the
folder (``..``, absolute paths, symlinks pointing out).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minibert.train.rundir import CHECKPOINT_PATTERN, METRICS, RUN_JSON, read_metrics

__all__ = [
    "RUN_STATUSES",
    "FinetuneReport",
    "MetricsTail",
    "CurveBuffer",
    "DataReport",
    "FinetuneComparison",
    "RunStatus",
    "RunSummary",
    "UnsafePathError",
    "compare_finetune_runs",
    "data_report",
    "describe_start",
    "downsample",
    "finetune_report",
    "flatten_settings",
    "list_run_checkpoints",
    "list_runs",
    "metric_series",
    "nearest_checkpoint",
    "read_metrics_table",
    "read_run",
    "resolve_inside",
    "run_status",
]

logger = logging.getLogger(__name__)

RUN_STATUSES = ("running", "finished", "stopped", "failed")

# A run that has written nothing for this long (and at least 10x its usual gap between lines)
# without a stop event is taken for dead. Two minutes covers a held-out evaluation or a
# checkpoint save of the presets we train on a laptop; the 10x rule stretches it for big models
# whose steps are slow.
STALE_AFTER_SECONDS = 120.0
STALE_GAP_FACTOR = 10.0

# How deep list_runs looks for run directories under the root: runs/<name>/ (1),
# runs/demo/pretrain/ (2), runs/cv/fold-0/ inside a demo folder (3).
MAX_RUN_DEPTH = 3

# Files written when a fine-tuning run is complete (see minibert.train.finetune).
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.jsonl"
CONFUSION_FILE = "confusion_matrix.json"


class UnsafePathError(ValueError):
    """A path that would leave the runs folder (``..``, absolute, or a symlink pointing out)."""


def resolve_inside(root: str | Path, relative: str | Path) -> Path:
    """``root / relative`` resolved (symlinks followed), refusing anything outside ``root``.

    Raises :class:`UnsafePathError` for an absolute ``relative``, for ``..`` that climbs out,
    and for a symlink (anywhere along the path) that points outside ``root``. The path need not
    exist (a run deleted while shown is reported by the caller, not here).
    """
    root_resolved = Path(root).expanduser().resolve()
    relative = Path(relative)
    if relative.is_absolute() or relative.drive:
        raise UnsafePathError(f"{relative} is an absolute path; give a run name inside the folder")
    candidate = (root_resolved / relative).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise UnsafePathError(f"{relative} is outside the runs folder {root_resolved}")
    return candidate


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStatus:
    """How a run stands: one of :data:`RUN_STATUSES` and a sentence that says why."""

    status: str
    detail: str
    stop_reason: str | None = None
    seconds_since_update: float | None = None


def _last_activity(path: Path) -> float | None:
    """The newest modification time among the files a live run keeps touching."""
    times = []
    for candidate in (path / METRICS, path / RUN_JSON, path / "checkpoints", path):
        try:
            times.append(candidate.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def _usual_gap(records: Sequence[Mapping[str, Any]]) -> float:
    """The median time between the last metric lines (seconds; 0 with too few lines)."""
    stamps = [r["wall_time"] for r in records[-20:] if isinstance(r.get("wall_time"), int | float)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b >= a]
    return statistics.median(gaps) if gaps else 0.0


def run_status(
    path: str | Path,
    records: Sequence[Mapping[str, Any]] | None = None,
    *,
    now: float | None = None,
    stale_after: float | None = None,
) -> RunStatus:
    """Whether the run in ``path`` is running, finished, stopped (by a signal) or failed.

    ``records`` are its metric lines if already read. ``stale_after`` overrides how long a
    silent run without a stop event counts as still running (default: the larger of
    :data:`STALE_AFTER_SECONDS` and 10x its usual gap between lines).
    """
    path = Path(path)
    if records is None:
        records = read_metrics(path)
    now = time.time() if now is None else now
    last = _last_activity(path)
    silent = None if last is None else max(0.0, now - last)
    limit = stale_after
    if limit is None:
        limit = max(STALE_AFTER_SECONDS, STALE_GAP_FACTOR * _usual_gap(records))

    # The decisive event is the last stop / nonfinite / resume line: a resumed run that had been
    # stopped by a signal is running again.
    decisive = None
    for record in records:
        if record.get("split") == "event" and record.get("event") in (
            "stop",
            "nonfinite_loss",
            "resume",
        ):
            decisive = record
    kind = _read_json(path / RUN_JSON).get("kind")
    fresh = silent is not None and silent < limit

    if decisive is not None and decisive.get("event") == "nonfinite_loss":
        message = str(decisive.get("message", "the loss became NaN or infinite"))
        return RunStatus("failed", f"step {decisive.get('step')}: {message}", None, silent)
    if decisive is not None and decisive.get("event") == "stop":
        reason = str(decisive.get("reason", ""))
        if reason.startswith("signal"):
            signal_name = reason.split(":", 1)[-1]
            return RunStatus(
                "stopped",
                f"stopped by {signal_name} at step {decisive.get('step')}; continue it with "
                "--resume",
                reason,
                silent,
            )
        if kind == "finetune" and not (path / RESULTS_FILE).is_file():
            # Fine-tuning writes its stop event, then evaluates final/ and writes results.json.
            if fresh:
                return RunStatus("running", "evaluating the final weights", reason, silent)
            return RunStatus(
                "failed",
                "training ended but results.json was never written (the final evaluation did "
                "not finish)",
                reason,
                silent,
            )
        return RunStatus(
            "finished", f"finished at step {decisive.get('step')} ({reason})", reason, silent
        )
    if kind == "finetune-cv" and (path / RESULTS_FILE).is_file():
        return RunStatus("finished", "cross-validation finished", "cross_validation", silent)
    if fresh:
        step = records[-1].get("step") if records else None
        what = f"at step {step}" if step is not None else "starting (no metrics yet)"
        return RunStatus("running", what, None, silent)
    if silent is None:
        return RunStatus("failed", "the run folder has disappeared", None, None)
    return RunStatus(
        "failed",
        f"no stop event and nothing written for {_duration(silent)}: the process ended without "
        "finishing (killed or crashed); --resume continues from the last checkpoint",
        None,
        silent,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------------
# Listing and summaries
# --------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """One run directory as a watcher sees it.

    ``settings`` holds the few settings worth a table column (flattened, dotted keys);
    ``info`` is the whole ``run.json`` (empty while it is not written yet).
    """

    path: Path
    name: str  # relative to the runs folder, e.g. "demo/pretrain"
    kind: str  # run.json's kind: "pretrain", "finetune", "finetune-cv"; "unknown" without it
    status: str  # one of RUN_STATUSES
    status_detail: str
    settings: dict[str, Any]
    last_step: int | None
    last_update: float | None  # Unix time of the newest file the run touched
    created: str | None
    num_checkpoints: int
    has_final: bool
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_row(self) -> dict[str, Any]:
        """A flat dict for a table: name, kind, status, last step, then the settings."""
        return {
            "run": self.name,
            "kind": self.kind,
            "status": self.status,
            "step": self.last_step,
            "checkpoints": self.num_checkpoints,
            **self.settings,
            "detail": self.status_detail,
        }


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; empty when missing, unreadable or half written."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def flatten_settings(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are kept as values)."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(flatten_settings(item, f"{name}."))
        else:
            flat[name] = item
    return flat


# The settings shown as columns, as (column, dotted key in run.json) in display order.
_SETTING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("preset", "config.preset"),
    ("task", "task.name"),
    ("init", "init.spec"),
    ("layers", "config.model.num_hidden_layers"),
    ("hidden", "config.model.hidden_size"),
    ("heads", "config.model.num_attention_heads"),
    ("parameters", "model.parameters"),
    ("corpus", "data.data_config.corpus"),
    ("batch", "config.train.batch_size"),
    ("lr", "config.optim.lr"),
    ("max_steps", "config.train.max_steps"),
    ("time_budget", "config.train.time_budget"),
    ("seed", "seed"),
)


def _settings(info: Mapping[str, Any]) -> dict[str, Any]:
    flat = flatten_settings(info)
    return {column: flat[key] for column, key in _SETTING_COLUMNS if flat.get(key) is not None}


def list_run_checkpoints(path: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as ``(step, path)``, oldest first (``.tmp-`` skipped).

    A folder that vanishes while it is listed (pruned by the trainer) is simply left out.
    """
    folder = Path(path) / "checkpoints"
    found = []
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    for child in children:
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and child.is_dir() and (child / "config.json").is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def nearest_checkpoint(path: str | Path, step: float) -> tuple[int, Path] | None:
    """The complete checkpoint whose step is nearest ``step`` (ties: the earlier one).

    ``final/`` is not a candidate (its step is the last checkpoint's); None without checkpoints.
    """
    found = list_run_checkpoints(path)
    if not found:
        return None
    return min(found, key=lambda item: (abs(item[0] - step), item[0]))


def read_run(
    path: str | Path, root: str | Path | None = None, *, now: float | None = None
) -> RunSummary:
    """Summarise the run in ``path`` (its name is relative to ``root`` when given).

    Raises ``FileNotFoundError`` when ``path`` is not a directory.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist (was the run deleted?)")
    info = _read_json(path / RUN_JSON)
    records = read_metrics(path)
    status = run_status(path, records, now=now)
    name = path.name
    if root is not None:
        try:
            name = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            name = path.name
    steps = [r.get("step") for r in records if isinstance(r.get("step"), int)]
    checkpoints = list_run_checkpoints(path)
    return RunSummary(
        path=path,
        name=name,
        kind=str(info.get("kind", "unknown")),
        status=status.status,
        status_detail=status.detail,
        settings=_settings(info),
        last_step=max(steps) if steps else None,
        last_update=_last_activity(path),
        created=info.get("created"),
        num_checkpoints=len(checkpoints),
        has_final=(path / "final" / "config.json").is_file(),
        info=info,
    )


def _is_run_dir(path: Path) -> bool:
    return (path / RUN_JSON).is_file() or (path / METRICS).is_file()


def _find_run_dirs(root: Path) -> list[Path]:
    """Run directories under ``root`` (at most MAX_RUN_DEPTH deep; hidden folders skipped)."""
    found: list[Path] = []
    level = [root]
    for _ in range(MAX_RUN_DEPTH):
        next_level = []
        for folder in level:
            try:
                children = sorted(folder.iterdir())
            except OSError:
                continue
            for child in children:
                if child.name.startswith(".") or not child.is_dir():
                    continue
                if child.name in ("checkpoints", "final", "tokenizer"):
                    continue
                try:
                    resolve_inside(root, child.relative_to(root))
                except UnsafePathError:
                    logger.warning("skipped %s: a symlink that points outside %s", child, root)
                    continue
                if _is_run_dir(child):
                    found.append(child)
                next_level.append(child)  # a cross-validation run holds fold runs
        level = next_level
    return found


def list_runs(root: str | Path, *, now: float | None = None) -> list[RunSummary]:
    """Every run under ``root``, most recently active first.

    A run is a folder with ``run.json`` or ``metrics.jsonl``, at most three levels down (so the
    demo's ``runs/demo/pretrain`` and cross-validation folds are found). A missing ``root``
    gives an empty list; a run deleted while it is listed is left out.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    summaries = []
    for path in _find_run_dirs(root):
        try:
            summaries.append(read_run(path, root, now=now))
        except FileNotFoundError:
            continue
    summaries.sort(key=lambda run: (-(run.last_update or 0.0), run.name))
    return summaries


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def read_metrics_table(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The complete lines of a run's ``metrics.jsonl`` (a partial last line is skipped).

    ``None`` values (NaN/inf are written as null) stay ``None``; a missing file is no lines.
    """
    return read_metrics(path, split=split)


class MetricsTail:
    """Reads a growing ``metrics.jsonl`` incrementally: each call returns only the new lines.

    It remembers the byte offset after the last complete line, so a line the writer has only
    half written is read on a later call, once finished. If the file is replaced or shrinks
    (a resumed run rewrites it; the run was deleted and started again), the tail starts over
    and sets ``reset`` so the caller drops what it had. A missing file reads as no lines.

        tail = MetricsTail("runs/tiny")
        everything = tail.read_new()
        later = tail.read_new()     # only what was appended in between
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path / METRICS if path.is_dir() or path.suffix != ".jsonl" else path
        self.offset = 0
        self.reset = False
        self.missing = False
        self._inode: tuple[int, int] | None = None
        self.lines_read = 0

    def read_new(self) -> list[dict[str, Any]]:
        """The records appended since the last call (all of them on the first call)."""
        self.reset = False
        try:
            stat = self.path.stat()
        except OSError:
            self.missing = True
            if self.offset:
                self.reset = True
            self.offset, self._inode = 0, None
            return []
        self.missing = False
        inode = (stat.st_dev, stat.st_ino)
        if self._inode is not None and (inode != self._inode or stat.st_size < self.offset):
            self.offset, self.reset = 0, True
        self._inode = inode
        if stat.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(stat.st_size - self.offset)
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # only part of a line so far
        self.offset += end + 1
        records = []
        for line in data[: end + 1].decode("utf-8", errors="replace").split("\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s: a line that is not JSON was skipped", self.path)
                continue
            if isinstance(record, dict):
                records.append(record)
        self.lines_read += len(records)
        return records


class CurveBuffer:
    """A run's metric lines kept as columns, one table per split, for drawing many points.

    A 100k-line ``metrics.jsonl`` as dicts is a few hundred MB in Python; as columns of the
    numeric values it is a fraction of that, and :meth:`rows` hands a plot at most
    ``max_points`` of them (:func:`downsample`). Feed it what :class:`MetricsTail` reads.
    """

    AXES = ("step", "time", "tokens")

    def __init__(self) -> None:
        self.splits: dict[str, dict[str, list[float | None]]] = {}

    def clear(self) -> None:
        self.splits.clear()

    def __len__(self) -> int:
        return sum(len(columns["step"]) for columns in self.splits.values())

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append metric lines (``event`` lines and non-numeric values are left out)."""
        for record in records:
            split = record.get("split")
            if not isinstance(split, str) or split == "event":
                continue
            columns = self.splits.setdefault(split, {axis: [] for axis in self.AXES})
            n = len(columns["step"])
            for key, value in record.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                column = columns.get(key)
                if column is None:
                    column = columns[key] = [None] * n
                column.append(value)
            for column in columns.values():  # keys this line lacks
                if len(column) == n:
                    column.append(None)

    def metrics(self, split: str) -> list[str]:
        """The metric names seen in ``split`` (axes excluded)."""
        return [k for k in self.splits.get(split, {}) if k not in self.AXES]

    def rows(
        self, split: str, y: str, x: str = "step", max_points: int = 2000
    ) -> list[dict[str, float]]:
        """``[{"step", x, y}, ...]`` for the lines of ``split`` that have both, downsampled."""
        columns = self.splits.get(split)
        if not columns or y not in columns or x not in columns:
            return []
        rows = [
            {"step": s, x: xv, y: yv}
            for s, xv, yv in zip(columns["step"], columns[x], columns[y], strict=True)
            if xv is not None and yv is not None and math.isfinite(yv)
        ]
        return downsample(rows, y, max_points)


def metric_series(
    records: Iterable[Mapping[str, Any]], y: str, *, split: str | None = None, x: str = "step"
) -> tuple[list[float], list[float]]:
    """``(xs, ys)`` of metric ``y`` against ``x`` (``step``, ``tokens`` or ``time``).

    Lines of another split, without ``y`` or with a null (non-finite) value are left out.
    """
    xs, ys = [], []
    for record in records:
        if split is not None and record.get("split") != split:
            continue
        value, where = record.get(y), record.get(x)
        if not isinstance(value, int | float) or not isinstance(where, int | float):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        xs.append(float(where))
        ys.append(float(value))
    return xs, ys


def downsample(
    records: Sequence[Mapping[str, Any]], y: str, max_points: int = 2000
) -> list[Mapping[str, Any]]:
    """At most about ``max_points`` records, keeping the shape of the ``y`` curve.

    The records are cut into ``max_points // 2`` equal buckets; from each, the lines with the
    lowest and highest ``y`` are kept (in their order), so spikes survive, which plain striding
    would drop. The first and last records are always kept. Records without a number for ``y``
    are dropped.
    """
    usable = [r for r in records if isinstance(r.get(y), int | float)]
    if len(usable) <= max_points:
        return usable
    buckets = max(max_points // 2, 1)
    size = len(usable) / buckets
    kept_index: set[int] = {0, len(usable) - 1}
    for b in range(buckets):
        start, stop = int(b * size), int((b + 1) * size)
        if stop <= start:
            continue
        values = [usable[i][y] for i in range(start, stop)]
        low = start + min(range(len(values)), key=values.__getitem__)
        high = start + max(range(len(values)), key=values.__getitem__)
        kept_index.update((low, high))
    return [usable[i] for i in sorted(kept_index)]


# --------------------------------------------------------------------------------------------
# Fine-tuning results
# --------------------------------------------------------------------------------------------


@dataclass
class FinetuneReport:
    """What a finished fine-tuning run measured, read from its result files.

    ``splits`` maps ``"validation"``/``"test"`` to the ``confusion_matrix.json`` entry
    (``labels``, ``accuracy``, ``macro_f1``, ``confusion`` [gold][predicted], ``per_class``);
    ``mistakes`` are prediction lines that are wrong (sequence tasks: ``correct`` false; tagging:
    fewer correct words than words), at most ``max_mistakes`` per split.
    """

    path: Path
    task: str | None
    kind: str | None  # "sequence" | "token"
    labels: list[str]
    results: dict[str, Any]
    splits: dict[str, dict[str, Any]]
    mistakes: dict[str, list[dict[str, Any]]]
    num_predictions: dict[str, int]
    complete: bool  # results.json and confusion_matrix.json both present

    def per_class_rows(self, split: str = "validation") -> list[dict[str, Any]]:
        """One row per label: precision, recall, F1, support (empty if the split is missing)."""
        per_class = self.splits.get(split, {}).get("per_class", {})
        return [{"label": label, **scores} for label, scores in per_class.items()]


def finetune_report(path: str | Path, *, max_mistakes: int = 50) -> FinetuneReport:
    """Read ``results.json``, ``confusion_matrix.json`` and ``predictions.jsonl`` of a run.

    Missing files (a run still training, or stopped by a signal) leave their parts empty and
    ``complete`` false; a truncated predictions file is read up to its last complete line.
    """
    path = Path(path)
    info = _read_json(path / RUN_JSON)
    results = _read_json(path / RESULTS_FILE)
    confusion = _read_json(path / CONFUSION_FILE)
    task_info = info.get("task", {}) if isinstance(info.get("task"), dict) else {}
    labels = list(confusion.get("labels") or task_info.get("labels") or results.get("labels") or [])
    mistakes: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for record in read_metrics(path / PREDICTIONS_FILE):
        split = str(record.get("split", "?"))
        counts[split] = counts.get(split, 0) + 1
        wrong = record.get("correct") is False or (
            "correct_words" in record and record["correct_words"] < len(record.get("words", []))
        )
        if wrong and len(mistakes.setdefault(split, [])) < max_mistakes:
            mistakes[split].append(record)
    return FinetuneReport(
        path=path,
        task=task_info.get("name") or results.get("task"),
        kind=task_info.get("kind") or results.get("kind"),
        labels=labels,
        results=results,
        splits=dict(confusion.get("splits", {})),
        mistakes=mistakes,
        num_predictions=counts,
        complete=bool(results) and bool(confusion),
    )


@dataclass
class FinetuneComparison:
    """One fine-tuning run in a side-by-side table: where it started and what it scored."""

    name: str
    path: Path
    start: str  # "scratch", "MiniLM", "pretrained (<run>)", "model folder (<name>)"
    status: str
    steps: int | None
    validation: dict[str, float]
    test: dict[str, float]

    def as_row(self) -> dict[str, Any]:
        return {
            "run": self.name,
            "start": self.start,
            "status": self.status,
            "steps": self.steps,
            "val accuracy": self.validation.get("accuracy"),
            "val macro-F1": self.validation.get("macro_f1"),
            "test accuracy": self.test.get("accuracy"),
            "test macro-F1": self.test.get("macro_f1"),
        }


def describe_start(info: Mapping[str, Any]) -> str:
    """Where a fine-tuning run's weights came from, in words, from its ``run.json``."""
    init = info.get("init") if isinstance(info.get("init"), Mapping) else {}
    kind, spec = init.get("kind"), str(init.get("spec", ""))
    if kind == "random":
        return "scratch"
    if spec == "minilm":
        return "MiniLM"
    if kind == "minibert-run":
        return f"pretrained ({init.get('source_run') or Path(spec).name})"
    return f"model folder ({Path(spec).name})" if spec else "unknown"


def compare_finetune_runs(
    runs: Iterable[RunSummary], chosen: RunSummary
) -> list[FinetuneComparison]:
    """The fine-tuning runs among ``runs`` on the same task as ``chosen`` (``chosen`` first),
    each with where it started and its validation/test scores (empty while it trains)."""

    def task_of(run: RunSummary) -> Any:
        task = run.info.get("task")
        return task.get("name") if isinstance(task, Mapping) else None

    task = task_of(chosen)
    same = [chosen] + [
        r for r in runs if r.path != chosen.path and r.kind == "finetune" and task_of(r) == task
    ]
    rows = []
    for run in same:
        results = _read_json(run.path / RESULTS_FILE)
        rows.append(
            FinetuneComparison(
                name=run.name,
                path=run.path,
                start=describe_start(run.info),
                status=run.status,
                steps=results.get("steps", run.last_step),
                validation=dict(results.get("validation") or {}),
                test=dict(results.get("test") or {}),
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# The data a run trained on
# --------------------------------------------------------------------------------------------


@dataclass
class DataReport:
    """What the data pipeline did for a run: its steps, statistics and tokenizer coverage.

    ``steps`` are the cleaning and dedup steps in order (:class:`minibert.data.stats.StepReport`
    objects), ``stats`` maps ``"parsed"``, ``"cleaned"``, ``"train"``, ``"valid"`` to
    :class:`~minibert.data.stats.CorpusStats`. ``matches_run`` is false when the data prepared
    now differs from what the run recorded (a changed corpus or code): the report then
    describes today's data, not the run's.
    """

    run_data: dict[str, Any]  # run.json's "data" block
    corpus: str
    steps: list[Any]
    stats: dict[str, Any]
    tokenizer: Any | None
    fingerprint: str
    matches_run: bool
    from_cache: bool

    def step_rows(self) -> list[dict[str, Any]]:
        """One row per step: documents in/out, removed, changed, bytes removed, why."""
        return [
            {
                "step": step.name,
                "docs in": step.docs_in,
                "docs out": step.docs_out,
                "removed": step.docs_removed,
                "changed": step.docs_changed,
                "bytes removed": step.bytes_removed,
                "why": ", ".join(f"{k}: {v}" for k, v in step.reason_counts.items()),
                "cut": ", ".join(f"{k}: {v}" for k, v in step.edit_counts.items()),
            }
            for step in self.steps
        ]

    def duplicates(self) -> list[Any]:
        """The dedup steps (exact and near-duplicate), with their examples."""
        return [step for step in self.steps if "dup" in step.name]


def data_report(
    run_dir: str | Path, cache_dir: str | Path | None = None, *, progress: bool = False
) -> DataReport:
    """Prepare (or load from the data cache) the data a pretraining run recorded in run.json.

    A cache hit takes seconds; a miss rebuilds the corpus (a minute for the Wikipedia excerpt).
    Raises ``ValueError`` for a run without a data block (fine-tuning runs: their data is the
    task; look at the pretraining run they started from).
    """
    from minibert.data.pipeline import DataConfig, prepare_data

    run_dir = Path(run_dir)
    info = _read_json(run_dir / RUN_JSON)
    data = info.get("data")
    if not isinstance(data, Mapping) or "data_config" not in data:
        start = describe_start(info) if info.get("kind") == "finetune" else None
        hint = f" It started from {start}; pick that run." if start else ""
        raise ValueError(
            f"{run_dir.name} records no pretraining corpus in run.json (kind "
            f"{info.get('kind', 'unknown')!r}).{hint}"
        )
    prepared = prepare_data(
        DataConfig.from_dict(dict(data["data_config"])), cache_dir, progress=progress
    )
    return DataReport(
        run_data=dict(data),
        corpus=prepared.config.corpus,
        steps=list(prepared.reports),
        stats=dict(prepared.stats),
        tokenizer=prepared.tokenizer_report,
        fingerprint=prepared.fingerprint,
        matches_run=prepared.fingerprint == data.get("data_fingerprint"),
        from_cache=prepared.from_cache,
    )
