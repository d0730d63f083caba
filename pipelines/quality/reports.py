"""Validation reports kept per run: static HTML pages and JSON copies (framework-free).

Layout under ``Settings.reports_dir``::

    <run_id>/index.html                 every check of the run, pass/fail, links
    <run_id>/<stage>/<asset>__<check>.html   one page per check: each expectation, its
    <run_id>/<stage>/<asset>__<check>.json   kwargs, success, unexpected count/percent,
                                             sample failing values and rows (+ JSON copy)

``stage`` says which step validated (``raw``, ``marts``, ``publish`` for the publish
step's own re-validation, or any other short name). Every step writes its pages and
then rebuilds the index from all JSON copies present, so the index always lists every
check run so far. Pages are self-contained (inline CSS, no script, no network) and
written atomically (temporary file + rename): a browser never sees half a page.

Great Expectations' own Data Docs renderer works offline but its pages load their
CSS/JS from CDNs and it needs a stored validation result; these pages need neither.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipelines.quality.checks import CheckContext, CheckOutcome, FrameCheck, check_name

INDEX_NAME = "index.html"
STAGE_TITLES = {
    "raw": "Raw layer checks",
    "marts": "Mart checks (quality gate)",
    "publish": "Re-validation by the publish step",
}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_STAGE = re.compile(r"^[a-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class CheckReport:
    """Where one check's report was written."""

    check: str
    status: str
    html: Path
    json: Path


@dataclass(frozen=True)
class RunReport:
    """The reports written by one step, and the run's index."""

    index: Path
    checks: dict[str, CheckReport]  # check name -> its pages


def safe_name(text: str) -> str:
    """A file-name-safe form of ``text`` (run ids, asset paths, check names)."""
    cleaned = _SAFE.sub("_", str(text)).strip("._")
    if not cleaned:
        raise ValueError(f"{text!r} gives an empty file name")
    return cleaned[:150]


def run_dir(reports_dir: Path | str, run_id: str) -> Path:
    """The folder of one run's reports."""
    return Path(reports_dir) / safe_name(run_id)


def status_of(outcome: CheckOutcome) -> str:
    if outcome.error:
        return "error"
    if outcome.skipped:
        return "skipped"
    return "passed" if outcome.success else "failed"


def report_record(
    check: FrameCheck,
    outcome: CheckOutcome,
    *,
    stage: str,
    run_id: str,
    ctx: CheckContext | None = None,
) -> dict[str, Any]:
    """Everything known about one validation, as JSON-friendly data."""
    sql = None
    if ctx is not None:
        try:
            sql = check.sql(ctx)
        except Exception as exc:  # the page still renders; the outcome says what failed
            sql = f"-- cannot render the query: {type(exc).__name__}: {exc}"
    return {
        "check": check_name(check),
        "asset": list(check.asset),
        "name": check.name,
        "description": check.description,
        "relation": check.relation,
        "columns": list(check.columns),
        "sql": sql,
        "stage": stage,
        "run_id": run_id,
        "as_of": ctx.as_of.isoformat() if ctx is not None else None,
        "status": status_of(outcome),
        "success": outcome.success,
        "evaluated": outcome.evaluated,
        "failed_expectations": len(outcome.failures),
        "rows": outcome.rows,
        "seconds": round(outcome.seconds, 3),
        "error": outcome.error,
        "skipped": outcome.skipped,
        "summary": outcome.summary(),
        "notes": outcome.notes,
        "results": outcome.results,
        "failures": outcome.failures,
        "gx_result": outcome.gx_result,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def simple_record(
    *,
    asset: Sequence[str],
    name: str,
    description: str,
    passed: bool,
    summary: str,
    stage: str,
    run_id: str,
    as_of: date | None = None,
    facts: Mapping[str, Any] | None = None,
    sample_rows: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A record for a check that is not a Great Expectations suite (e.g. a batch gate),
    to list it in the run's report with :func:`write_check_report` + :func:`write_index`."""
    asset = list(asset)
    return {
        "check": f"{'.'.join(asset)}:{name}",
        "asset": asset,
        "name": name,
        "description": description,
        "relation": None,
        "columns": [],
        "sql": None,
        "stage": stage,
        "run_id": run_id,
        "as_of": as_of.isoformat() if as_of is not None else None,
        "status": "passed" if passed else "failed",
        "success": passed,
        "evaluated": 1,
        "failed_expectations": 0 if passed else 1,
        "rows": None,
        "seconds": None,
        "error": None,
        "skipped": None,
        "summary": summary,
        "notes": {"facts": dict(facts or {})} if facts else {},
        "results": [
            {
                "expectation": name,
                "column": "",
                "kwargs": {},
                "success": passed,
                "sample": [],
                "sample_rows": [dict(r) for r in sample_rows],
            }
        ],
        "failures": [] if passed else [{"expectation": name, "summary": summary}],
        "gx_result": None,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- writing


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, allow_nan=False, sort_keys=False)


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf (invalid JSON) by None, recursively."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_check_report(folder: Path, record: Mapping[str, Any]) -> CheckReport:
    """Write one check's HTML page and JSON copy into ``folder/<stage>/``."""
    stage = record["stage"]
    if not _STAGE.fullmatch(stage):
        raise ValueError(f"stage {stage!r}: expected {_STAGE.pattern}")
    base = folder / stage / safe_name(f"{'.'.join(record['asset'])}__{record['name']}")
    html_path, json_path = base.with_name(base.name + ".html"), base.with_name(base.name + ".json")
    _write_atomic(json_path, _to_json(_json_safe(dict(record))))
    _write_atomic(html_path, render_check_page(record))
    return CheckReport(record["check"], record["status"], html_path, json_path)


def load_records(folder: Path) -> list[dict[str, Any]]:
    """Every check record written for a run (unreadable copies are skipped)."""
    records = []
    for path in sorted(folder.glob("*/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "check" in record and "stage" in record:
            record["_page"] = path.with_suffix(".html").relative_to(folder).as_posix()
            record["_json"] = path.relative_to(folder).as_posix()
            records.append(record)
    return records


def write_index(folder: Path, run_id: str) -> Path:
    """(Re)build the run's index page from every JSON copy in ``folder``."""
    index = folder / INDEX_NAME
    _write_atomic(index, render_index(load_records(folder), run_id))
    return index


def write_reports(
    reports_dir: Path | str,
    run_id: str,
    stage: str,
    results: Iterable[tuple[FrameCheck, CheckOutcome]],
    ctx: CheckContext | None = None,
) -> RunReport:
    """Write the pages of ``results`` for one step of a run and rebuild the run index."""
    folder = run_dir(reports_dir, run_id)
    written: dict[str, CheckReport] = {}
    for check, outcome in results:
        record = report_record(check, outcome, stage=stage, run_id=run_id, ctx=ctx)
        written[record["check"]] = write_check_report(folder, record)
    return RunReport(index=write_index(folder, run_id), checks=written)


# --------------------------------------------------------------------------- rendering

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
.passed{color:#11631d;font-weight:600}.failed,.error{color:#a11;font-weight:600}
.skipped{color:#8a6d00;font-weight:600}tr.bad td{background:#fff1f1}
.muted{color:#666;font-size:.85rem}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}")
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value, default=_json_default, ensure_ascii=False))
    return html.escape(str(value))


def _status(status: str) -> str:
    return f'<span class="{_e(status)}">{_e(status.upper())}</span>'


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], bad: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    lines = []
    for i, row in enumerate(rows):
        css = ' class="bad"' if i < len(bad) and bad[i] else ""
        lines.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    headers = list(dict.fromkeys(k for row in rows for k in row))
    return _table(headers, ([_e(row.get(h)) for h in headers] for row in rows))


def _notes_html(notes: Mapping[str, Any]) -> str:
    parts = []
    for key, value in notes.items():
        parts.append(f"<h3>{_e(key.replace('_', ' '))}</h3>")
        if isinstance(value, Mapping):
            scalars = {k: v for k, v in value.items() if not isinstance(v, Mapping | list)}
            nested = {k: v for k, v in value.items() if isinstance(v, Mapping | list)}
            parts.append(_table(["field", "value"], ([_e(k), _e(v)] for k, v in scalars.items())))
            for name, inner in nested.items():
                if isinstance(inner, Mapping) and inner:
                    parts.append(f"<p>{_e(name)}</p>")
                    parts.append(
                        _table(["key", "value"], ([_e(k), _e(v)] for k, v in inner.items()))
                    )
                elif inner:
                    parts.append(f"<p>{_e(name)}: {_e(inner)}</p>")
        else:
            parts.append(f"<p>{_e(value)}</p>")
    return "".join(parts)


def render_check_page(record: Mapping[str, Any]) -> str:
    """The HTML page of one check."""
    results: list[Mapping[str, Any]] = record.get("results") or []
    facts = [
        ("status", _status(record["status"])),
        ("check", f"<code>{_e(record['check'])}</code>"),
        ("description", _e(record.get("description"))),
        ("relation", f"<code>{_e(record.get('relation'))}</code>"),
        ("columns", _e(", ".join(record.get("columns") or []))),
        ("stage", _e(STAGE_TITLES.get(record["stage"], record["stage"]))),
        ("run", _e(record.get("run_id"))),
        ("as-of date", _e(record.get("as_of"))),
        ("rows validated", _e(record.get("rows"))),
        (
            "expectations",
            f"{_e(record.get('evaluated'))} evaluated, "
            f"{_e(record.get('failed_expectations'))} failed",
        ),
        ("seconds", _e(record.get("seconds"))),
        ("written at", _e(record.get("written_at"))),
    ]
    if record.get("skipped"):
        facts.insert(1, ("skipped", _e(record["skipped"])))
    if record.get("error"):
        facts.insert(1, ("error", f'<span class="error">{_e(record["error"])}</span>'))
    body = [
        f'<p class="muted"><a href="../{INDEX_NAME}">&larr; all checks of this run</a> · '
        f'<a href="{_e(_page_stem(record))}.json">JSON copy</a></p>',
        f"<h1>{_status(record['status'])} {_e(record['check'])}</h1>",
        _table(["", ""], ([_e(k), v] for k, v in facts)),
    ]
    if record.get("notes"):
        body.append("<h2>Facts</h2>" + _notes_html(record["notes"]))
    if results:
        body.append("<h2>Expectations</h2>")
        body.append(
            _table(
                [
                    "#",
                    "expectation",
                    "column",
                    "kwargs",
                    "success",
                    "elements",
                    "unexpected",
                    "unexpected %",
                    "sample unexpected values",
                    "observed",
                ],
                (
                    [
                        _e(i),
                        f"<code>{_e(r.get('expectation'))}</code>",
                        _e(r.get("column")),
                        f"<code>{_e(r.get('kwargs'))}</code>",
                        _status("passed" if r.get("success") else "failed"),
                        _e(r.get("element_count")),
                        _e(r.get("unexpected_count")),
                        _e(r.get("unexpected_percent")),
                        _e(r.get("sample")),
                        _e(r.get("observed_value"))
                        + (
                            f'<br><span class="error">{_e(r["error"])}</span>'
                            if r.get("error")
                            else ""
                        ),
                    ]
                    for i, r in enumerate(results, 1)
                ),
                bad=[not r.get("success") for r in results],
            )
        )
        for i, r in enumerate(results, 1):
            if r.get("success") or not r.get("sample_rows"):
                continue
            body.append(
                f"<h3>#{i} {_e(r.get('expectation'))} ({_e(r.get('column'))}): "
                "sample failing rows</h3>" + _rows_table(r["sample_rows"])
            )
    if record.get("sql"):
        body.append(f"<h2>Query</h2><pre>{_e(record['sql'])}</pre>")
    return _page(f"{record['status'].upper()} {record['check']}", "\n".join(body))


def _page_stem(record: Mapping[str, Any]) -> str:
    return safe_name(f"{'.'.join(record['asset'])}__{record['name']}")


def _stage_order(stage: str) -> tuple[int, str]:
    known = list(STAGE_TITLES)
    return (known.index(stage) if stage in known else len(known), stage)


def render_index(records: Sequence[Mapping[str, Any]], run_id: str) -> str:
    """The run's index page: every check, failures first within each stage."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    bad = counts.get("failed", 0) + counts.get("error", 0)
    as_of = next((r.get("as_of") for r in records if r.get("as_of")), None)
    overall = "failed" if bad else "passed"
    body = [
        f"<h1>{_status(overall)} Validation report of run {_e(run_id)}</h1>",
        f"<p>as-of date {_e(as_of)} · {len(records)} checks: "
        + ", ".join(f"{_status(s)} {n}" for s, n in sorted(counts.items()))
        + f'</p><p class="muted">rebuilt {_e(datetime.now(UTC).isoformat(timespec="seconds"))}'
        "</p>",
    ]
    stages = sorted({r["stage"] for r in records}, key=_stage_order)
    rank = {"error": 0, "failed": 1, "skipped": 2, "passed": 3}
    for stage in stages:
        rows = sorted(
            (r for r in records if r["stage"] == stage),
            key=lambda r: (rank.get(r["status"], 9), r["check"]),
        )
        body.append(f"<h2>{_e(STAGE_TITLES.get(stage, stage))}</h2>")
        body.append(
            _table(
                ["status", "check", "description", "failed / evaluated", "rows", "summary"],
                (
                    [
                        _status(r["status"]),
                        f'<a href="{_e(r["_page"])}"><code>{_e(r["check"])}</code></a> '
                        f'<span class="muted">(<a href="{_e(r["_json"])}">json</a>)</span>',
                        _e(r.get("description")),
                        f"{_e(r.get('failed_expectations'))} / {_e(r.get('evaluated'))}",
                        _e(r.get("rows")),
                        "" if r["status"] == "passed" else _e(str(r.get("summary", ""))[:400]),
                    ]
                    for r in rows
                ),
                bad=[r["status"] in ("failed", "error") for r in rows],
            )
        )
    if not records:
        body.append("<p>No check has been run yet.</p>")
    return _page(f"Validation report {run_id}", "\n".join(body))


# --------------------------------------------------------------------------- retention


def prune_reports(
    reports_dir: Path | str,
    keep_days: int,
    *,
    keep_run_ids: Iterable[str] = (),
    now: datetime | None = None,
) -> list[Path]:
    """Remove the report folders of runs older than ``keep_days``; returns what was removed.

    A folder's age is that of its newest file. Only folders that hold a run index
    (``index.html``) or the loose stage folders of one are touched, never the folders of
    ``keep_run_ids`` (the running run). ``keep_days`` 0 keeps everything.
    """
    if keep_days < 0:
        raise ValueError("keep_days must be >= 0 (0 keeps every report)")
    root = Path(reports_dir)
    if keep_days == 0 or not root.is_dir():
        return []
    cutoff = (now or datetime.now(UTC)).timestamp() - keep_days * 86_400
    kept = {safe_name(r) for r in keep_run_ids}
    removed: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in kept):
        files = [f for f in folder.rglob("*") if f.is_file()]
        is_report = (folder / INDEX_NAME).is_file() or any(f.suffix == ".json" for f in files)
        if not is_report or max((f.stat().st_mtime for f in files), default=0) >= cutoff:
            continue
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
        folder.rmdir()
        removed.append(folder)
    return removed
