"""E-mail delivery of the brief against a real SMTP server started by the test (aiosmtpd on
127.0.0.1): one message per manager with an address, to that address, carrying the manager's
page; a server that is down is reported per manager and the next call retries; managers
without an address are skipped, never sent to someone else."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from ui_server import free_port

from pipelines.brief.mail import DELIVERY_FILE, deliver_pending, read_recipients


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def briefs(tmp_path: Path) -> Path:
    """A brief folder as build_briefs leaves it: summary.json naming three manager pages."""
    folder = tmp_path / "briefs" / "2026-09-30"
    folder.mkdir(parents=True)
    pages = {}
    for manager, name in (("M1", "Ann Smith"), ("M2", "Bob Jones"), ("M3", "Cy Young")):
        page = folder / f"{manager}.html"
        page.write_text(f"<html><body><h1>{name}: your day</h1><svg></svg></body></html>")
        pages[manager] = page.name
    (folder / "index.html").write_text("<html></html>")
    (folder / "summary.json").write_text(json.dumps({"as_of": "2026-09-30", "managers": pages}))
    return tmp_path / "briefs"


def test_one_message_per_manager_then_retry_after_failure(briefs: Path, tmp_path: Path) -> None:
    recipients_file = tmp_path / "recipients.csv"
    recipients_file.write_text("manager_id,email\nM1,ann@example.com\nM2,bob@example.com\n")
    recipients = read_recipients(recipients_file)
    port = free_port()
    url = f"smtp://kam:secret@127.0.0.1:{port}"

    # the server is down: both managers with an address fail, nothing is lost
    down = deliver_pending(briefs, url, "kam-brief@example.com", recipients, timeout=5)
    assert set(down.failed) == {"2026-09-30/M1", "2026-09-30/M2"}
    assert down.sent == [] and down.skipped == ["2026-09-30/M3"]
    assert all("secret" not in error for error in down.failed.values())  # password masked
    state = json.loads((briefs / "2026-09-30" / DELIVERY_FILE).read_text())
    assert state["M1"]["attempts"] == 1 and "sent_at" not in state["M1"]

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        # the next run retries and sends one message per manager with an address
        up = deliver_pending(
            briefs, f"smtp://127.0.0.1:{port}", "kam-brief@example.com", recipients, timeout=5
        )
        again = deliver_pending(
            briefs, f"smtp://127.0.0.1:{port}", "kam-brief@example.com", recipients, timeout=5
        )
    finally:
        controller.stop()
    assert sorted(up.sent) == ["2026-09-30/M1", "2026-09-30/M2"] and up.failed == {}
    assert again.sent == [] and again.failed == {}  # sent once, never twice
    assert len(inbox.messages) == 2
    by_rcpt = {tuple(rcpts): (sender, content) for sender, rcpts, content in inbox.messages}
    assert set(by_rcpt) == {("ann@example.com",), ("bob@example.com",)}
    for rcpt, name in ((("ann@example.com",), "Ann Smith"), (("bob@example.com",), "Bob Jones")):
        sender, content = by_rcpt[rcpt]
        assert sender == "kam-brief@example.com"
        message = message_from_bytes(content, policy=policy.default)
        assert message["To"] == rcpt[0]
        assert message["Subject"] == "Your KAM brief for 2026-09-30"
        html = message.get_body(preferencelist=("html",)).get_content()
        assert f"{name}: your day" in html and "<svg" in html  # the page, charts inline
        other = "Bob Jones" if name == "Ann Smith" else "Ann Smith"
        assert other not in html
    state = json.loads((briefs / "2026-09-30" / DELIVERY_FILE).read_text())
    assert state["M1"]["email"] == "ann@example.com" and state["M1"]["sent_at"]
    assert "M3" not in state


def test_recipients_file_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.csv"
    bad.write_text("manager_id,email\nM1,not-an-address\n")
    with pytest.raises(ValueError, match=r"r\.csv, line 2"):
        read_recipients(bad)
    bad.write_text("manager,mail\nM1,a@b.c\n")
    with pytest.raises(ValueError, match="header must name manager_id and email"):
        read_recipients(bad)
