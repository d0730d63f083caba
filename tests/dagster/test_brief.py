"""The daily brief, end to end: `kam run` on the session's demo writes one page per manager
and an index from the published warehouse; headless Chromium renders them offline.

Asserted: the pages name the marts' clients, their counts equal the marts' (key accounts
at risk, open actions, win-back, managers), no request leaves the machine (Chromium goes
through a recording proxy that must see nothing, and sees the planted control request),
`kam brief --manager` rebuilds one page, and every published column carries its dbt
description. Screenshots are saved beside the test's output (tmp) and named in the log.
Chromium (Debian's package) is required when KAM_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
AS_OF = "2026-09-30"  # the end of the session demo (tests/dagster/conftest.py)


class _Inbox:
    """aiosmtpd handler: every message the local SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _demo_env(data: Path, demo_sources: Path, dbt_manifest: Path, **extra: str) -> dict:
    """`kam run`'s environment on the session demo in data dir ``data``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_"))}
    env.update(
        KAM_DATA_DIR=str(data),
        KAM_ERP_URL=f"sqlite:///{demo_sources / 'erp.sqlite'}",
        KAM_CRM_URL=f"sqlite:///{demo_sources / 'crm.sqlite'}",
        DBT_TARGET_PATH=str(dbt_manifest.parent),
        **extra,
    )
    return env


def _kam_run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kam"), "run", "--as-of", AS_OF],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def brief_run(dbt_manifest: Path, demo_sources: Path, tmp_path_factory) -> dict:
    from aiosmtpd.controller import Controller

    base = tmp_path_factory.mktemp("brief")
    data = base / "data"
    with sqlite3.connect(demo_sources / "crm.sqlite") as crm:
        managers = sorted(r[0] for r in crm.execute("select manager_id from managers"))
    # every manager but the last has an address: one message each, none for the last
    recipients = {m: f"{m.lower()}@example.com" for m in managers[:-1]}
    (base / "recipients.csv").write_text(
        "manager_id,email\n" + "".join(f"{m},{e}\n" for m, e in recipients.items())
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _demo_env(
        data,
        demo_sources,
        dbt_manifest,
        KAM_SMTP_URL=f"smtp://127.0.0.1:{port}",
        KAM_BRIEF_SENDER="kam-brief@example.com",
        KAM_BRIEF_RECIPIENTS=str(base / "recipients.csv"),
    )
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        proc = _kam_run(env)
    finally:
        controller.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "env": env,
        "data": data,
        "folder": data / "briefs" / AS_OF,
        "inbox": inbox.messages,
        "recipients": recipients,
    }


def test_the_run_mailed_one_message_per_manager_with_an_address(brief_run: dict) -> None:
    from email import message_from_bytes, policy

    recipients: dict[str, str] = brief_run["recipients"]
    folder: Path = brief_run["folder"]
    pages = {p.stem for p in folder.glob("*.html")} - {"index"}
    expected = {m: e for m, e in recipients.items() if m in pages}
    assert expected, "no manager with a page has an address: the test proves nothing"
    received = {}
    for rcpts, content in brief_run["inbox"]:
        message = message_from_bytes(content, policy=policy.default)
        [to] = rcpts
        assert message["To"] == to and to not in received, "one message per address"
        received[to] = message.get_body(preferencelist=("html",)).get_content()
    assert set(received) == set(expected.values())
    for manager, email in expected.items():
        page = (folder / f"{manager}.html").read_text(encoding="utf-8")
        # the manager's own brief, charts inline (e-mail lines end in CRLF)
        assert received[email].splitlines() == page.splitlines()
    delivery = json.loads((folder / "delivery.json").read_text())
    assert {m for m, state in delivery.items() if state.get("sent_at")} == set(expected)


class _Tables(HTMLParser):
    """Rows (cell texts) of every table by its class; link targets; external references."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = defaultdict(list)
        self.links: list[str] = []
        self.references: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        for name in ("src", "href", "xlink:href", "srcset", "data"):
            value = attrs.get(name)
            if value and not value.startswith("#"):
                self.references.append(value)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "table":
            self._table = attrs.get("class") or ""
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.rows[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("KAM_REQUIRE_BROWSER") == "1":
            pytest.fail("KAM_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


class _RecordingProxy:
    """A TCP listener standing in for the whole network: Chromium is told to send every
    request through it, so any connection it receives is a request that would have left the
    machine. It answers nothing (the request fails), it only records the first bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(200))
                except OSError:
                    self.requests.append(b"")

    def hosts(self) -> set[str]:
        """Hosts asked for: ``GET http://host/...`` or ``CONNECT host:443``."""
        out = set()
        for request in self.requests:
            parts = request.split(b"\r\n", 1)[0].split(b" ")
            if len(parts) >= 2:
                target = parts[1].decode("latin-1")
                out.add(target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0])
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _browse(chromium: str, page: Path, proxy: _RecordingProxy, screenshot: Path | None) -> str:
    browser = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
        "--no-pings",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        "--proxy-bypass-list=<-loopback>",  # even loopback goes through the recorder
        "--virtual-time-budget=5000",
        "--window-size=1400,2000",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    if screenshot is not None:
        subprocess.run([*browser, f"--screenshot={screenshot}", page.as_uri()], timeout=120)
    return dom


def _wh(data: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse" / "kam.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_pages_show_the_marts_offline_in_chromium(brief_run: dict, tmp_path: Path) -> None:
    chromium = _chromium()
    folder: Path = brief_run["folder"]
    data: Path = brief_run["data"]
    # the manager with the most key accounts at risk (ties: most actions)
    [(manager, manager_name, at_risk)] = _wh(
        data,
        "select o.account_manager_id, any_value(o.account_manager_name), count(*)"
        " from marts.client_overview o where o.is_key_client and not o.is_churned"
        " and (o.is_at_risk or coalesce(o.has_volume_drop, false))"
        " group by 1 order by 3 desc, 1 limit 1",
    )
    assert at_risk > 0, "the demo plants key accounts at risk"
    expected_at_risk = {
        r[0]
        for r in _wh(
            data,
            "select client_name from marts.client_overview where account_manager_id ="
            f" '{manager}' and is_key_client and not is_churned"
            " and (is_at_risk or coalesce(has_volume_drop, false))",
        )
    }
    expected_actions = _wh(
        data,
        f"select client_name, due_date from marts.kam_actions where manager_id = '{manager}'",
    )
    expected_winback = _wh(
        data,
        "select client_name from marts.winback_candidates"
        f" where suggested_manager_id = '{manager}'",
    )
    managers_with_pages = {p.stem for p in folder.glob("*.html")} - {"index"}
    portfolio_managers = {r[0] for r in _wh(data, "select manager_id from marts.manager_portfolio")}

    # Chromium itself calls home (component updates, sign-in) whatever its flags: a blank
    # page tells which hosts that is; the brief's pages must ask for no other host, and a
    # control page that fetches an image must be seen asking for its host.
    proxy = _RecordingProxy()
    try:
        blank = tmp_path / "blank.html"
        blank.write_text("<html><body>blank</body></html>")
        _browse(chromium, blank, proxy, None)
        browser_own = proxy.hosts()
        proxy.requests.clear()
        control = tmp_path / "control.html"
        control.write_text('<html><body><img src="http://kam-brief.invalid/x.png"></body></html>')
        _browse(chromium, control, proxy, None)
        assert "kam-brief.invalid" in proxy.hosts(), "the recorder missed a page's request"
        proxy.requests.clear()
        shots = Path(os.environ.get("KAM_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        page_dom = _browse(chromium, folder / f"{manager}.html", proxy, shots / "brief_manager.png")
        index_dom = _browse(chromium, folder / "index.html", proxy, shots / "brief_index.png")
    finally:
        proxy.close()
    assert proxy.hosts() - browser_own == set(), f"requests left the machine: {proxy.requests}"
    for shot in ("brief_manager.png", "brief_index.png"):
        assert (shots / shot).stat().st_size > 20_000, shot
    print(f"screenshots: {shots / 'brief_manager.png'}, {shots / 'brief_index.png'}")

    page = _parse(page_dom)
    assert manager_name and manager_name in page_dom
    assert {row[0] for row in page.rows["at-risk"]} == expected_at_risk
    assert len(page.rows["actions"]) == len(expected_actions)
    assert {(r[1], r[3]) for r in page.rows["actions"]} == {
        (name, due.isoformat()) for name, due in expected_actions
    }
    assert {r[1] for r in page.rows["winback"]} == {r[0] for r in expected_winback}
    assert page_dom.count("<svg") >= 1 + min(len(expected_at_risk), 10)  # stages + revenue
    assert page.references == [], "the page refers to something outside itself"

    index = _parse(index_dom)
    # the index refers only to the manager pages beside it
    assert set(index.references) == {f"{m}.html" for m in managers_with_pages}
    assert {link[: -len(".html")] for link in index.links} == managers_with_pages
    inactive = {
        r[0]
        for r in _wh(data, "select manager_id from marts.manager_portfolio where not is_active")
    }
    assert portfolio_managers - managers_with_pages <= inactive
    total_at_risk = sum(int(r[3]) for r in index.rows["managers"])
    [(all_at_risk,)] = _wh(
        data,
        "select count(*) from marts.client_overview where is_key_client and not is_churned"
        " and (is_at_risk or coalesce(has_volume_drop, false))",
    )
    assert total_at_risk == all_at_risk
    total_actions = sum(int(r[4]) for r in index.rows["managers"])
    assert total_actions == _wh(data, "select count(*) from marts.kam_actions")[0][0]
    assert index.rows["backtest"], "the index shows how often the flags were right"


def test_kam_brief_rebuilds_one_manager(brief_run: dict) -> None:
    folder: Path = brief_run["folder"]
    page = next(p for p in sorted(folder.glob("*.html")) if p.name != "index.html")
    page.unlink()
    proc = subprocess.run(
        [str(BIN / "kam"), "brief", "--as-of", AS_OF, "--manager", page.stem],
        env=brief_run["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert page.is_file() and "1 manager page and the index" in proc.stdout
    # the summary (what e-mail delivery reads) still lists every page, not just this one
    listed = json.loads((folder / "summary.json").read_text())["managers"]
    assert set(listed.values()) == {p.name for p in folder.glob("*.html")} - {"index.html"}
    wrong_day = subprocess.run(
        [str(BIN / "kam"), "brief", "--as-of", "2026-09-29"],
        env=brief_run["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong_day.returncode == 2
    assert "holds as-of date 2026-09-30" in wrong_day.stderr


def test_every_published_table_and_column_is_described(brief_run: dict) -> None:
    rows = _wh(
        brief_run["data"],
        "select t.schema_name, t.table_name, t.comment, c.column_name, c.comment"
        " from duckdb_tables() t join duckdb_columns() c using (database_name, schema_name,"
        " table_name) where t.database_name = current_database()",
    )
    assert {r[1] for r in rows} >= {"client_overview", "client_status_history", "publish_info"}
    assert sorted({f"{r[0]}.{r[1]}" for r in rows if not r[2]}) == []
    assert sorted(f"{r[0]}.{r[1]}.{r[3]}" for r in rows if not r[4]) == []
    types = dict(
        _wh(
            brief_run["data"],
            "select table_name || '.' || column_name, data_type from duckdb_columns()"
            " where column_name in ('net_revenue_365d', 'revenue_at_stake', 'published_at')",
        )
    )
    assert types["client_overview.revenue_at_stake"] == "DECIMAL(18,2)"
    assert types["client_abc.net_revenue_365d"] == "DECIMAL(18,2)"
    assert types["publish_info.published_at"] == "TIMESTAMP WITH TIME ZONE"


def test_a_failed_brief_says_the_warehouse_was_published_and_exits_3(
    dbt_manifest: Path, demo_sources: Path, tmp_path: Path
) -> None:
    """The brief runs after publishing: when it fails, the run published the warehouse and
    `kam run` says so (exit 3), naming the step that failed, never "nothing published"."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "briefs").write_text("a file where the briefs folder should be\n")  # unwritable
    proc = _kam_run(_demo_env(data, demo_sources, dbt_manifest))
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    [(run_id, as_of)] = _wh(data, "select run_id, as_of_date from marts.publish_info")
    assert as_of.isoformat() == AS_OF
    warehouse = data / "warehouse" / "kam.duckdb"
    assert (
        f"kam: run {run_id} published the warehouse {warehouse} (as-of {AS_OF}), "
        "then FAILED in a later step" in proc.stderr
    ), proc.stderr[-3000:]
    assert "failed step: manager_brief" in proc.stderr
    assert "nothing published" not in proc.stderr
