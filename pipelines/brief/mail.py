"""E-mail delivery of the brief (optional): one message per manager, retried next run.

Recipients come from a small CSV file (``manager_id,email``; KAM_BRIEF_RECIPIENTS), which
works for orders-only companies too. Each brief folder keeps ``delivery.json``: per manager
the address, when it was sent, or the last error. :func:`deliver_pending` sends what is not
sent yet in every kept folder, oldest first, so a failed delivery is retried by the next run
(``kam run`` or ``kam brief``). Delivery never raises: the caller reports what failed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipelines.secrets import mask_text, mask_url, url_secrets

DELIVERY_FILE = "delivery.json"


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)  # "<as_of>/<manager_id>"
    failed: dict[str, str] = field(default_factory=dict)  # same key -> error
    skipped: list[str] = field(default_factory=list)  # managers without an address


def read_recipients(path: Path) -> dict[str, str]:
    """``manager_id,email`` rows (header required); an error names the file and line."""
    out: dict[str, str] = {}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"manager_id", "email"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must name manager_id and email")
        for line, row in enumerate(reader, start=2):
            manager, email = (row.get("manager_id") or "").strip(), (row.get("email") or "").strip()
            if not manager or "@" not in email:
                raise ValueError(f"{path}, line {line}: need a manager_id and an e-mail address")
            out[manager] = email
    return out


def _message(page: Path, manager_id: str, as_of: str, sender: str, to: str) -> EmailMessage:
    html = page.read_text(encoding="utf-8")
    message = EmailMessage()
    message["Subject"] = f"Your KAM brief for {as_of}"
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="kam.brief")
    message.set_content(
        f"Your KAM brief for {as_of} is attached as HTML (charts inline); open it in a browser."
    )
    message.add_alternative(html, subtype="html")
    message.add_attachment(
        html.encode("utf-8"),
        maintype="text",
        subtype="html",
        filename=f"brief_{as_of}_{manager_id}.html",
    )
    return message


def _connect(url: str, timeout: float) -> smtplib.SMTP:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port or 465, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        server = smtplib.SMTP(host, port or 25, timeout=timeout)
        if parts.scheme == "smtp+starttls":
            server.starttls(context=ssl.create_default_context())
    if parts.username:
        server.login(unquote(parts.username), unquote(parts.password or ""))
    return server


def deliver_pending(
    briefs_dir: Path,
    smtp_url: str,
    sender: str,
    recipients: dict[str, str],
    timeout: float = 30.0,
) -> Delivery:
    """Send every manager page of every kept brief folder not yet sent; record the outcome."""
    result = Delivery()
    for folder in sorted(p for p in Path(briefs_dir).iterdir() if p.is_dir()):
        summary = folder / "summary.json"
        if not summary.is_file():
            continue
        pages = json.loads(summary.read_text())["managers"]
        state_file = folder / DELIVERY_FILE
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        pending = [m for m in sorted(pages) if not state.get(m, {}).get("sent_at")]
        if not pending:
            continue
        try:
            server = _connect(smtp_url, timeout)
        except Exception as exc:  # the server is down: every pending one waits for next run
            error = mask_text(f"{type(exc).__name__}: {exc}", url_secrets(smtp_url))
            for manager in pending:
                _record_failure(state, result, folder.name, manager, recipients, error, smtp_url)
            _save(state_file, state)
            continue
        try:
            for manager in pending:
                to = recipients.get(manager)
                if not to:
                    result.skipped.append(f"{folder.name}/{manager}")
                    continue
                try:
                    server.send_message(
                        _message(folder / pages[manager], manager, folder.name, sender, to)
                    )
                except Exception as exc:
                    error = mask_text(f"{type(exc).__name__}: {exc}", url_secrets(smtp_url))
                    key = (folder.name, manager)
                    _record_failure(state, result, *key, recipients, error, smtp_url)
                    continue
                state[manager] = {"email": to, "sent_at": datetime.now(UTC).isoformat()}
                result.sent.append(f"{folder.name}/{manager}")
        finally:
            with contextlib.suppress(Exception):  # already gone: nothing to close
                server.quit()
            _save(state_file, state)
    return result


def _record_failure(
    state: dict,
    result: Delivery,
    as_of: str,
    manager: str,
    recipients: dict[str, str],
    error: str,
    smtp_url: str,
) -> None:
    if not recipients.get(manager):
        result.skipped.append(f"{as_of}/{manager}")
        return
    previous = state.get(manager, {})
    state[manager] = {
        "email": recipients[manager],
        "error": f"{error} (via {mask_url(smtp_url)})",
        "attempts": int(previous.get("attempts", 0)) + 1,
    }
    result.failed[f"{as_of}/{manager}"] = state[manager]["error"]


def _save(path: Path, state: dict) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(state, indent=2, sort_keys=True))
    temp.replace(path)
