"""The report page in a real browser: headless Chromium at phone and desktop sizes.

Console messages are read from Chromium's own log (--enable-logging=stderr): the page has no
script, so any console line (a CSP violation, a failed load) is a fault. Set REPORT_SCREENSHOT to
a path to keep the desktop screenshot (docs/report.png is made that way).
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import waitress
from conftest import Client, delivery, make_config, message_event, psid_hash, query, wait_for

from expensebot.service import Service
from expensebot.web import report

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.timezone.utc)
CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
BROWSER_TIMEOUT = 120  # seconds; generous, a shared CI machine may be slow to start a browser
PSID = "24000000000000001"
# One month of a person's life: (day, text).
MONTH = [
    (1, "new shoes 89 #clothes"), (1, "coffee 3.80 #coffee"), (2, "groceries 64.20 #groceries"),
    (3, "bus pass 49 #transport"), (4, "lunch 12.50 #food"), (5, "coffee 4.20 #coffee"),
    (6, "cinema 14 #fun"), (7, "groceries 38.75 #groceries"), (8, "pharmacy 18.40 #health"),
    (9, "dinner with Ana 46 #food"), (10, "coffee 3.80 #coffee"), (11, "taxi 22.30 #transport"),
    (12, "groceries 51.10 #groceries"), (13, "lunch 11.90 #food"), (14, "concert 65 #fun"),
    (15, "electricity 72.45 #home"), (16, "coffee 4.20 #coffee"), (17, "groceries 44.60 #groceries"),
    (18, "lunch 13.20 #food"), (19, "books 27.90 #fun"), (20, "taxi 18.70 #transport"),
    (21, "groceries 57.35 #groceries"), (22, "coffee 3.80 #coffee"), (23, "brunch 24 #food"),
    (24, "gym 35 #health"), (25, "groceries 40.25 #groceries"), (26, "coffee 4.20 #coffee"),
    (27, "€18 museum tickets #fun"), (27, "€9.50 lunch in Lisbon #food"), (28, "<script>alert(1)</script> 5"),
]
BUDGETS = [("", 1000_00, "USD"), ("food", 120_00, "USD"), ("groceries", 300_00, "USD"), ("fun", 80_00, "USD")]


def seed_month(service: Service) -> str:
    """Send the month's expenses through the webhook, set budgets; return the psid_hash."""
    client = Client(service)
    for number, (day, text) in enumerate(MONTH):
        moment = dt.datetime(2026, 11, day, 12, 30, tzinfo=dt.timezone.utc)
        event = message_event(PSID, f"m_month_{number}", text, timestamp=int(moment.timestamp() * 1000))
        assert client.post_webhook(delivery(event)).status == 200
    person = psid_hash(PSID)
    conn = sqlite3.connect(service.config.db_path)
    with conn:
        conn.executemany("INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
                         " VALUES (?, ?, ?, ?, '2026-11-01T00:00:00.000Z')",
                         [(person, *budget) for budget in BUDGETS])
    conn.close()
    return person


@pytest.fixture
def report_server(tmp_path, open_service):
    """The real bot on real waitress with the clock at NOW and a month of expenses; yields the page URL."""
    service = open_service(make_config(tmp_path), replay_interval=0.05, now=lambda: NOW)
    person = seed_month(service)
    server = waitress.create_server(service.app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    token = report.make_token(report.link_key(service.config.psid_hash_key), person, NOW)
    yield f"http://127.0.0.1:{server.effective_port}/report/{token}/?month=2026-11"
    server.close()
    thread.join(timeout=10)


ABROAD = dt.datetime(2026, 10, 30, 20, 0, tzinfo=dt.timezone.utc)  # the packaged ECB history ends that day
TRIP = [(28, "groceries 42.10 #groceries"), (29, "sushi 3200 JPY #food"), (29, "train 14500 JPY #transport"),
        (30, "pho 95000 VND #food"), (30, "coffee 3.40 #coffee")]


@pytest.fixture
def converting_server(tmp_path, ecb, open_service):
    """A EUR person's trip abroad on real waitress, converted by the ECB stand-in's rates; yields the page URL."""
    config = make_config(tmp_path, currency="EUR", rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05, now=lambda: ABROAD)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    client = Client(service)
    for number, (day, text) in enumerate(TRIP):
        moment = dt.datetime(2026, 10, day, 12, 30, tzinfo=dt.timezone.utc)
        event = message_event(PSID, f"m_trip_{number}", text, timestamp=int(moment.timestamp() * 1000))
        assert client.post_webhook(delivery(event)).status == 200
    server = waitress.create_server(service.app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    token = report.make_token(report.link_key(service.config.psid_hash_key), psid_hash(PSID), ABROAD)
    yield f"http://127.0.0.1:{server.effective_port}/report/{token}/?month=2026-10"
    server.close()
    thread.join(timeout=10)


def open_in_chromium(url: str, width: int, height: int, workdir: Path) -> tuple[str, list[str], Path]:
    """Load url headless at width x height: (the DOM as rendered, console lines, the screenshot)."""
    workdir.mkdir(parents=True, exist_ok=True)
    screenshot = workdir / f"report-{width}x{height}.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--window-size={width},{height}", f"--screenshot={screenshot}", "--dump-dom", url],
        capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, console, screenshot


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


@needs_chromium
@pytest.mark.parametrize("width, height", [(414, 900), (1280, 800)])
def test_the_page_renders_its_charts_without_a_console_error(report_server, tmp_path, width, height):
    dom, console, screenshot = open_in_chromium(report_server, width, height, tmp_path / "browser")
    assert console == []
    assert len(re.findall(r'<svg class="chart bars"', dom)) == 2   # USD and EUR
    assert len(re.findall(r'<svg class="chart days"', dom)) == 2
    assert len(re.findall(r'class="day"', dom)) == 27 + 1          # USD days with spending, and EUR's one
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>" not in dom
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    if width > 1000 and os.environ.get("REPORT_SCREENSHOT"):
        # The month in one picture: the same page, taller (the list runs on below it).
        tall = open_in_chromium(report_server, width, 1500, tmp_path / "tall")[2]
        shutil.copyfile(tall, os.environ["REPORT_SCREENSHOT"])


@needs_chromium
@pytest.mark.parametrize("width, height", [(414, 900), (1280, 800)])
def test_converted_money_renders_with_its_source_without_a_console_error(converting_server, tmp_path, width, height):
    dom, console, _ = open_in_chromium(converting_server, width, height, tmp_path / "browser")
    assert console == []
    assert "in all, at the ECB rate of each expense" in dom
    assert "VND is not in the total" in dom and "ECB euro reference rates</a>" in dom
    assert len(re.findall(r'<svg class="chart bars"', dom)) == 4   # EUR converted, then EUR, JPY, VND
    assert len(re.findall(r'<span class="note">\u2248 [0-9.]+ EUR \(ECB 2026-10-(29|30)\)</span>', dom)) == 2


class _BadPage(http.server.BaseHTTPRequestHandler):
    """A page that breaks its own policy, the way a careless template would."""

    def do_GET(self):
        body = b"<!doctype html><title>x</title><style>p{color:red}</style><p>x</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Security-Policy", report.HEADERS["Content-Security-Policy"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@needs_chromium
def test_the_console_check_sees_a_policy_violation(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, console, _ = open_in_chromium(f"http://127.0.0.1:{server.server_address[1]}/", 414, 900,
                                         tmp_path / "browser")
    finally:
        server.shutdown()
        server.server_close()
    assert any("Content Security Policy" in line for line in console)
