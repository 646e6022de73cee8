"""Report pages through the real app: links, who may see what, escaping, headers, the CSV, the chat."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import html
import io
import ipaddress
import json
import logging
import re
import sqlite3

import pytest
import requests
from conftest import (
    OPS_TOKEN,
    ROOT,
    Client,
    delivery,
    make_config,
    message_event,
    psid_hash,
    query,
    wait_for,
)

from expensebot import logs, summary
from expensebot.chat import meaning
from expensebot.config import Config, ConfigError
from expensebot.identity import PsidHasher
from expensebot.money import format_amount
from expensebot.ops import demo
from expensebot.replies import words
from expensebot.service import Service
from expensebot.settings import Settings
from expensebot.web import export, report

PUBLIC_URL = "https://bot.example/expenses"
NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)
ALICE, BOB = "24000000000000001", "24000000000000002"


class Clock:
    def __init__(self, moment: dt.datetime):
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def bot(tmp_path, graph, clock, open_service):
    config = make_config(tmp_path, public_url=PUBLIC_URL, fb_page_access_token="test-page-token",
                         fb_graph_url=graph.url)
    service = open_service(config, replay_interval=0.05, now=clock,
                           reply_backoff=(0, 0, 0))
    return service


@pytest.fixture
def client(bot):
    return Client(bot)


def say(client: Client, psid: str, text: str, when: dt.datetime, mid: str | None = None) -> None:
    mid = mid or f"m_{psid}_{when.timestamp()}_{abs(hash(text))}"
    event = message_event(psid, mid, text, timestamp=int(when.timestamp() * 1000))
    assert client.post_webhook(delivery(event)).status == 200


def page_path(bot: Service, psid: str, made: dt.datetime = NOW) -> str:
    """The path of a person's link, as the bot would send it."""
    url = report.link_for(bot.config, psid_hash(psid), made)
    assert url.startswith(PUBLIC_URL + "/report/")
    return url.removeprefix(PUBLIC_URL)


def day(number: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 11, number, hour, tzinfo=dt.timezone.utc)


# ---- Links ----

def test_no_link_without_a_public_url(tmp_path):
    assert report.link_for(make_config(tmp_path), psid_hash(ALICE), NOW) is None


@pytest.mark.parametrize("url", [
    "https://bot.example.org/?a=1",       # the link would become .../?a=1/report/<token>/
    "https://bot.example.org/x#top",
    "https://user:secret@bot.example.org",
    "https://",
])
def test_a_public_url_that_would_leak_or_break_links_is_refused(url):
    with pytest.raises(ConfigError, match="EXPENSEBOT_PUBLIC_URL"):
        Config.from_env({"EXPENSEBOT_PUBLIC_URL": url})


@pytest.mark.parametrize("url", ["https://bot.example.org", "https://bot.example.org/expenses/",
                                 "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"])
def test_a_public_url_over_https_or_on_this_machine_is_accepted(url):
    assert Config.from_env({"EXPENSEBOT_PUBLIC_URL": url}).public_url == url.rstrip("/")


def test_a_link_names_the_person_only_through_the_signed_token(bot):
    url = report.link_for(bot.config, psid_hash(ALICE), NOW)
    token = url.removeprefix(PUBLIC_URL + "/report/").removesuffix("/")
    assert url == f"{PUBLIC_URL}/report/{token}/"
    assert report._TOKEN_RE.fullmatch(token)
    assert ALICE not in url and psid_hash(ALICE) not in url
    assert report.read_token(report.link_key(bot.config.psid_hash_key), token, NOW) == report.Link(
        psid_hash(ALICE), int(NOW.timestamp()))


def test_the_signing_key_is_derived_not_the_secret_itself(bot):
    key = report.link_key(bot.config.psid_hash_key)
    assert key != bot.config.psid_hash_key.encode()
    assert key == hmac.new(bot.config.psid_hash_key.encode(), b"\xffexpensebot report links v1",
                           hashlib.sha256).digest()


@pytest.mark.parametrize("text", ["expensebot report links v1", "\udcffexpensebot report links v1"])
def test_no_psid_hash_is_the_signing_key(bot, client, text):
    """psid_hash is HMAC-SHA256 under the same PSID_HASH_KEY, and psid_hashes are not secret (logs,
    `run.py hash-psid`): the key's message must be one no PSID's UTF-8 can spell."""
    psid_hash_of_text = PsidHasher(bot.config.psid_hash_key)(text)
    forged = report.make_token(bytes.fromhex(psid_hash_of_text), psid_hash(BOB), NOW)
    assert client.get(f"/report/{forged}/").status == 403
    with pytest.raises(UnicodeDecodeError):
        report.KEY_PURPOSE.decode("utf-8", "surrogatepass")


@pytest.mark.parametrize("key", [b"test-psid-hash-key", report.link_key("another bot's key")],
                         ids=["raw PSID_HASH_KEY", "another bot"])
def test_a_token_signed_with_another_key_is_refused(client, key):
    token = report.make_token(key, psid_hash(ALICE), NOW)
    assert client.get(f"/report/{token}/").status == 403


def test_a_link_works_for_24_hours_and_then_never(bot, client, clock):
    path = page_path(bot, ALICE)
    clock.moment = NOW + dt.timedelta(hours=24) - dt.timedelta(seconds=1)
    assert client.get(path).status == 200
    clock.moment = NOW + dt.timedelta(hours=24)
    expired = client.get(path)
    assert expired.status == 403
    clock.moment = NOW + dt.timedelta(days=400)
    assert client.get(path).status == 403


def test_a_token_made_in_the_future_is_refused(bot, client):
    assert client.get(page_path(bot, ALICE, made=NOW + dt.timedelta(minutes=4))).status == 200  # clock skew
    assert client.get(page_path(bot, ALICE, made=NOW + dt.timedelta(minutes=10))).status == 403


def signed_with(key: bytes, who: str, made: int, expires: int) -> str:
    """A token signed with the right key, naming any `made` and `expires` (Unix seconds)."""
    body = report._TOKEN.pack(report.TOKEN_VERSION, bytes.fromhex(who), made, expires)
    return base64.urlsafe_b64encode(body + hmac.new(key, body, hashlib.sha256).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("lifetime", [2**32 - 1 - int(NOW.timestamp()), 24 * 3600 + 1, 0, -60],
                         ids=["expires 2^32-1", "a second over 24 h", "expires when made", "expires before made"])
def test_a_token_signed_with_the_right_key_lives_at_most_24_hours_from_when_it_was_made(bot, client, lifetime):
    made = int(NOW.timestamp())
    token = signed_with(report.link_key(bot.config.psid_hash_key), psid_hash(ALICE), made, made + lifetime)
    for suffix in ("/", "/expenses.csv", ""):
        assert client.get(f"/report/{token}{suffix}").status == 403
    honest = signed_with(report.link_key(bot.config.psid_hash_key), psid_hash(ALICE), made, made + 24 * 3600)
    assert honest == page_path(bot, ALICE).split("/")[2]
    assert client.get(f"/report/{honest}/").status == 200


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _flip(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1:]


def _resigned_for_bob_unsigned(token: str) -> str:
    """Alice's token with Bob's psid_hash put in and the old signature kept."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1:33] = bytes.fromhex(psid_hash(BOB))
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


TAMPERINGS = {
    "first character": lambda t: _flip(t, 0),
    "a psid_hash byte": lambda t: _flip(t, 10),
    "the expiry": lambda t: _flip(t, 48),
    "the signature": lambda t: _flip(t, len(t) - 5),
    "the padding bits": lambda t: t[:-1] + B64URL[B64URL.index(t[-1]) ^ 1],  # same bytes, other spelling
    "truncated": lambda t: t[:-1],
    "extended": lambda t: t + "A",
    "padded": lambda t: t + "==",
    "another person, old signature": _resigned_for_bob_unsigned,
    "not base64": lambda t: t[:-1] + "*",
    "empty-ish": lambda t: "x",
    "very long": lambda t: t * 50,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_token_gets_the_same_plain_403(bot, client, clock, tamper):
    path = page_path(bot, ALICE)
    token = path.split("/")[2]
    clock.moment = NOW + dt.timedelta(days=2)
    expired = client.get(path)
    clock.moment = NOW
    for suffix in ("/", "/expenses.csv", ""):
        answer = client.get(f"/report/{tamper(token)}{suffix}")
        assert answer.status == 403
        assert answer.body == expired.body  # no hint whether it expired, was altered or never existed
        assert answer.headers["content-type"] == "text/html; charset=utf-8"


def test_the_403_page_says_nothing_about_why(bot, client, clock):
    clock.moment = NOW + dt.timedelta(days=2)
    text = client.get(page_path(bot, ALICE)).text
    assert "Forbidden" in text
    for word in ("expired", "signature", "tamper", "unknown", "psid"):
        assert word not in text.lower()


def erase(client: Client, psid: str, when: dt.datetime) -> None:
    """Ask to delete the person's data and confirm it with the quick reply, a second later."""
    say(client, psid, "delete my data", when)
    confirm = message_event(psid, f"m_confirm_{when.timestamp()}", "Yes, delete",
                            timestamp=int(when.timestamp() * 1000) + 1000,
                            quick_reply={"payload": words.DELETE_CONFIRM})
    assert client.post_webhook(delivery(confirm)).status == 200


def test_a_link_made_before_the_persons_erasure_stops_working(bot, client):
    say(client, ALICE, "before coffee 4 #coffee", day(20, 9))
    before = page_path(bot, ALICE, made=day(20, 10))
    erase(client, ALICE, day(20, 11))  # confirmed at 11:00:01
    say(client, ALICE, "after tea 3 #tea", day(20, 12))
    unknown = client.get("/report/" + before.split("/")[2][:-4] + "AAAA/")
    assert unknown.status == 403
    for suffix in ("", "expenses.csv", "?month=2026-11"):
        answer = client.get(before + suffix)
        assert (answer.status, answer.body) == (403, unknown.body)
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert client.get(before.rstrip("/")).status == 403
    assert client.get(page_path(bot, ALICE, made=day(20, 11) + dt.timedelta(seconds=1))).status == 403
    after = page_path(bot, ALICE, made=day(20, 11) + dt.timedelta(seconds=2))
    page = client.get(after)
    assert page.status == 200 and "after tea" in page.text and "before coffee" not in page.text
    [row] = csv.DictReader(io.StringIO(client.get(after + "expenses.csv").text))
    assert row["description"] == "after tea"
    assert client.get(page_path(bot, BOB, made=day(20, 10))).status == 200  # nobody else's link


def test_a_link_without_the_trailing_slash_is_sent_to_the_page(bot, client):
    path = page_path(bot, ALICE)
    answer = client.get(path.rstrip("/"))
    assert answer.status == 301
    assert answer.headers["location"] == path.split("/")[2] + "/"


# ---- What a page shows ----

def test_a_link_shows_its_own_person_only(bot, client):
    say(client, ALICE, "alice's coffee 4.50 #coffee", day(3))
    say(client, BOB, "bob's secret 99 #gifts", day(3))
    alice_page = client.get(page_path(bot, ALICE)).text
    bob_csv = client.get(page_path(bot, BOB) + "expenses.csv").text
    assert "alice&#039;s coffee" in alice_page and "bob" not in alice_page.lower() and "gifts" not in alice_page
    assert "bob's secret" in bob_csv and "alice" not in bob_csv


def test_the_page_shows_the_month_totals_charts_and_list(bot, client):
    say(client, ALICE, "groceries 40 #groceries", day(2))
    say(client, ALICE, "groceries 10.25 #groceries", day(9))
    say(client, ALICE, "taxi 12 #transport", day(9))
    say(client, ALICE, "€5 souvenir", day(10))
    say(client, ALICE, "last month 70 #old", dt.datetime(2026, 10, 31, 12, tzinfo=dt.timezone.utc))
    page = client.get(page_path(bot, ALICE)).text
    assert "<h1>November 2026</h1>" in page
    assert '<div class="sum">62.25 <span class="code">USD</span></div>' in page
    assert '<div class="sum">5.00 <span class="code">EUR</span></div>' in page
    assert page.count('<svg class="chart bars"') == 2 and page.count('<svg class="chart days"') == 2
    assert "<tr><td>groceries</td><td>50.25 USD</td></tr>" in page     # the table under the chart
    assert "<tr><td>9</td><td>22.25 USD</td></tr>" in page             # spending per day
    assert "<tr><td>uncategorized</td><td>5.00 EUR</td></tr>" in page
    assert "last month" not in page and "#old" not in page
    assert 'href="?month=2026-10"' in page and "rel=\"next\"" not in page  # no future months
    assert 'href="expenses.csv?month=2026-11"' in page


def test_another_month_through_its_link(bot, client):
    say(client, ALICE, "last month 70 #old", dt.datetime(2026, 10, 31, 12, tzinfo=dt.timezone.utc))
    page = client.get(page_path(bot, ALICE) + "?month=2026-10").text
    assert "<h1>October 2026</h1>" in page and "last month" in page
    assert 'href="?month=2026-11" rel="next"' in page and 'href="?month=2026-09"' in page


def test_an_empty_month_says_so(bot, client):
    page = client.get(page_path(bot, ALICE) + "?month=2025-02").text
    assert "No expenses in February 2025." in page and "<svg" not in page and "Download CSV" not in page


def test_the_month_follows_the_persons_time_zone(bot, client):
    with sqlite3.connect(bot.config.db_path) as conn:
        conn.execute("INSERT INTO people (psid_hash, currency, timezone, updated_at)"
                     " VALUES (?, 'USD', 'Asia/Manila', '2026-11-01T00:00:00.000Z')", (psid_hash(ALICE),))
    conn.close()
    # 20:00 UTC on Oct 31 is already November 1 in Manila (UTC+8).
    say(client, ALICE, "midnight snack 3", dt.datetime(2026, 10, 31, 20, tzinfo=dt.timezone.utc))
    page = client.get(page_path(bot, ALICE) + "?month=2026-11").text
    assert "midnight snack" in page and '<td class="date">Nov 1</td>' in page


def test_far_from_utc_the_months_numbers_are_the_sql_sums_of_its_local_days(bot, client, clock):
    """Pacific/Kiritimati is UTC+14: its November is [Oct 31 10:00Z, Nov 30 10:00Z). One expense
    each side of both edges (a millisecond apart); page, per-day table, budget and CSV must all
    equal a plain SQL sum over those UTC bounds."""
    with sqlite3.connect(bot.config.db_path) as conn:
        conn.execute("INSERT INTO people (psid_hash, currency, timezone, updated_at)"
                     " VALUES (?, 'USD', 'Pacific/Kiritimati', '2026-11-01T00:00:00.000Z')", (psid_hash(ALICE),))
        conn.execute("INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
                     " VALUES (?, '', 100000, 'USD', '2026-11-01T00:00:00.000Z')", (psid_hash(ALICE),))
    conn.close()
    utc = dt.timezone.utc
    edges = [(dt.datetime(2026, 10, 31, 9, 59, 59, 999000, utc), "1"), (dt.datetime(2026, 10, 31, 10, tzinfo=utc), "2"),
             (dt.datetime(2026, 11, 30, 9, 59, 59, 999000, utc), "4"), (dt.datetime(2026, 11, 30, 10, tzinfo=utc), "8")]
    for number, (when, amount) in enumerate(edges):
        clock.moment = when  # each arrives when sent: a time more than a day ahead is taken as garbage
        say(client, ALICE, f"edge{number} {amount}", when)
    with sqlite3.connect(bot.config.db_path) as conn:
        [(in_sql,)] = conn.execute(
            "SELECT sum(amount_minor) FROM expenses WHERE psid_hash = ? AND occurred_at >= ? AND occurred_at < ?",
            (psid_hash(ALICE), "2026-10-31T10:00:00.000Z", "2026-11-30T10:00:00.000Z")).fetchall()
    conn.close()
    assert in_sql == 2_00 + 4_00
    clock.moment = dt.datetime(2026, 11, 30, 10, 30, tzinfo=utc)  # still November in UTC, December there
    path = page_path(bot, ALICE, made=clock.moment)
    assert "<h1>December 2026</h1>" in client.get(path).text
    page = client.get(path + "?month=2026-11").text
    assert '<div class="sum">6.00 <span class="code">USD</span></div>' in page
    assert "<tr><td>1</td><td>2.00 USD</td></tr>" in page and "<tr><td>30</td><td>4.00 USD</td></tr>" in page
    assert "6.00 USD of 1000.00 USD" in page and "edge0" not in page and "edge3" not in page
    assert 'href="?month=2026-12" rel="next"' in page
    rows = list(csv.DictReader(io.StringIO(client.get(path + "expenses.csv?month=2026-11").text)))
    assert sum(int(row["amount_minor"]) for row in rows) == in_sql
    assert [row["description"] for row in rows] == ["edge1", "edge2"]


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-11", "abcd-ef", "1999-12",
                                   "2026-11-01", "2026/11", "%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11", "%00",
                                   "9999-12", "9999-01", "10000-01", "0000-00", "-2026-11", "2026-11%0A",
                                   "2026-11'%20OR%201=1--", "%2B2026-11", "2026-%2B1"])
def test_a_month_that_cannot_be_shown_is_a_400(bot, client, month):
    path = page_path(bot, ALICE)
    for suffix in ("", "expenses.csv"):
        answer = client.get(f"{path}{suffix}?month={month}")
        assert answer.status == 400
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("month, title", [("2000-01", "January 2000"), ("9998-12", "December 9998")])
def test_the_first_and_last_months_that_can_be_shown(bot, client, month, title):
    path = page_path(bot, ALICE)
    page = client.get(f"{path}?month={month}")
    assert page.status == 200 and f"<h1>{title}</h1>" in page.text
    assert client.get(f"{path}expenses.csv?month={month}").status == 200


def test_budgets_show_their_progress(bot, client):
    say(client, ALICE, "dinner 90 #food", day(4))
    say(client, ALICE, "bus 20 #transport", day(4))
    assert "Budgets" not in client.get(page_path(bot, ALICE)).text
    with sqlite3.connect(bot.config.db_path) as conn:
        conn.executemany("INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
                         " VALUES (?, ?, ?, 'USD', '2026-11-01T00:00:00.000Z')",
                         [(psid_hash(ALICE), "", 100_00), (psid_hash(ALICE), "food", 95_00)])
    conn.close()
    page = client.get(page_path(bot, ALICE)).text
    assert "<span><bdi>Everything</bdi></span> <span class=\"num\">110.00 USD of 100.00 USD</span>" in page
    assert "110% used, over by 10.00 USD" in page
    assert "<span><bdi>food</bdi></span> <span class=\"num\">90.00 USD of 95.00 USD</span>" in page
    assert '<p class="caption near">94% used</p>' in page


# ---- Other currencies ----

ABROAD = dt.datetime(2026, 10, 30, 20, 0, tzinfo=dt.timezone.utc)  # the packaged ECB history ends that day
TRIP = [("coffee 3.20 #coffee", 0), ("sushi 500 JPY #food", 1), ("<b>ramen</b> 1200 JPY #a&b", 2),
        ("pho 100000 VND #food", 3), ("bánh mì 30000 VND", 4)]


def converting_bot(tmp_path, open_service, clock, rates_url: str):
    """A EUR person's bot, converting when rates_url is the ECB stand-in's, its rates loaded."""
    config = make_config(tmp_path, public_url=PUBLIC_URL, currency="EUR", rates_url=rates_url)
    service = open_service(config, replay_interval=0.05, now=clock)
    if rates_url != "off":
        assert wait_for(lambda: query(service, "SELECT count(*) FROM rates") != [(0,)], 30)
    return service


def spend_abroad(service: Service) -> None:
    client = Client(service)
    for text, minutes in TRIP:
        say(client, ALICE, text, ABROAD - dt.timedelta(minutes=10 - minutes))


def page_text(page: str) -> str:
    """The page as a reader sees it: tags gone, entities read, runs of white space as one space."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_a_month_in_several_currencies_shows_one_converted_total_by_the_rows(tmp_path, ecb, open_service):
    service = converting_bot(tmp_path, open_service, Clock(ABROAD), ecb.url)
    spend_abroad(service)
    [(total, count)] = query(service, "SELECT sum(converted_minor), count(converted_minor) FROM expenses"
                                      " WHERE converted_currency = 'EUR'")
    assert count == 3  # the coffee as it is, both JPY at the ECB rate; VND has no ECB rate
    page = Client(service).get(page_path(service, ALICE, made=ABROAD)).text
    text = page_text(page)
    assert f"\u2248 {format_amount(total, 'EUR')} in all, at the ECB rate of each expense\u2019s day" in text
    assert "3 expenses in the total" in text
    assert "VND is not in the total: the ECB publishes no rate for it." in text
    assert "wait for" not in text and "rate pending" not in text
    source = f'<a href="{report.RATES_SOURCE_URL}" rel="noopener noreferrer">ECB euro reference rates</a>'
    assert page.count(source) == 3  # the total, the converted categories, the list
    # The existing blocks stay, one per currency, and one more chart of categories in EUR.
    assert page.count('<svg class="chart bars"') == 4 and page.count('<svg class="chart days"') == 3


def test_converted_categories_and_each_expense_come_from_its_own_conversion(tmp_path, ecb, open_service):
    service = converting_bot(tmp_path, open_service, Clock(ABROAD), ecb.url)
    spend_abroad(service)
    page = Client(service).get(page_path(service, ALICE, made=ABROAD)).text
    for category, minor in query(service, "SELECT coalesce(category, 'uncategorized'), sum(converted_minor)"
                                          " FROM expenses WHERE converted_minor IS NOT NULL GROUP BY 1"):
        assert f"<tr><td>{html.escape(category)}</td><td>{format_amount(minor, 'EUR')}</td></tr>" in page
    [(sushi, day)] = query(service, "SELECT converted_minor, rate_day FROM expenses WHERE description = 'sushi'")
    assert day == "2026-10-30"
    assert f'500 JPY<span class="note">\u2248 {format_amount(sushi, "EUR")} (ECB 2026-10-30)</span>' in page
    assert '100000 VND<span class="note">no ECB rate: not converted</span>' in page
    assert '3.20 EUR</td>' in page  # the person's own currency: nothing to convert
    assert "&lt;b&gt;ramen&lt;/b&gt; #a&amp;b" in page and "<b>" not in page and "a&b" not in page


def test_an_expense_whose_rate_is_not_published_yet_is_pending_not_in_the_total(tmp_path, ecb, open_service):
    clock = Clock(ABROAD)
    service = converting_bot(tmp_path, open_service, clock, ecb.url)
    client = Client(service)
    clock.moment = dt.datetime(2026, 11, 5, 12, tzinfo=dt.timezone.utc)  # after the history's last day
    say(client, ALICE, "taxi 2000 JPY", clock.moment)
    say(client, ALICE, "coffee 3 EUR", clock.moment + dt.timedelta(minutes=1))
    page = client.get(page_path(service, ALICE, made=clock.moment)).text
    text = page_text(page)
    assert query(service, "SELECT rate_source FROM expenses WHERE description = 'taxi'") == [(None,)]
    assert "\u2248 3.00 EUR in all" in text and "1 expense in the total" in text
    assert "1 expense waits for its rate, and will be added when it is published." in text
    assert '2000 JPY<span class="note">rate pending</span>' in page
    assert "Converted amounts:" not in text  # no expense listed with a converted amount


def test_with_rates_off_the_page_has_no_converted_money(tmp_path, open_service):
    service = converting_bot(tmp_path, open_service, Clock(ABROAD), "off")
    spend_abroad(service)
    page = Client(service).get(page_path(service, ALICE, made=ABROAD)).text
    assert page.count('<svg class="chart bars"') == 3  # EUR, JPY, VND as before
    assert "in all" not in page and "converted" not in page and "ecb.europa.eu" not in page
    assert "rate pending" not in page and 'class="note"' not in page and "&asymp;" not in page


def test_a_month_only_in_the_persons_currency_has_no_converted_section(tmp_path, ecb, open_service):
    service = converting_bot(tmp_path, open_service, Clock(ABROAD), ecb.url)
    say(Client(service), ALICE, "coffee 3.20 #coffee", ABROAD - dt.timedelta(minutes=5))
    page = Client(service).get(page_path(service, ALICE, made=ABROAD)).text
    assert "coffee" in page and "in all" not in page and "ecb.europa.eu" not in page and 'class="note"' not in page


# ---- Escaping ----

@pytest.mark.parametrize("text, shown", [
    ("<script>alert(1)</script> 5", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("<img src=x onerror=alert(1)> 5", "&lt;img src=x onerror=alert(1)&gt;"),
    ('"quoted" & \'single\' 5', "&quot;quoted&quot; &amp; &#039;single&#039;"),
    ("</svg><svg onload=alert(1)> 5", "&lt;/svg&gt;&lt;svg onload=alert(1)&gt;"),
])
def test_what_a_person_wrote_is_shown_as_text(bot, client, text, shown):
    say(client, ALICE, text, day(5))
    page = client.get(page_path(bot, ALICE)).text
    assert shown in page
    assert "<script" not in page and "onerror=" not in page.replace("onerror=alert(1)&gt;", "")
    assert "<img" not in page and "onload=alert" not in page.replace("onload=alert(1)&gt;", "")


RLO, PDF = "\u202e", "\u202c"


def test_right_to_left_text_cannot_turn_around_what_follows_it(bot, client):
    """An unclosed U+202E (or plain Arabic/Hebrew) in a description or category runs on to the end of
    its paragraph: each person-written text is its own <bdi>, so amounts and tags stay readable."""
    say(client, ALICE, f"{RLO}gift 5 #fun", day(5))
    say(client, ALICE, "קפה 3 #שתייה", day(6))
    with sqlite3.connect(bot.config.db_path) as conn:
        conn.execute("INSERT INTO budgets (psid_hash, category, amount_minor, currency, updated_at)"
                     " VALUES (?, 'שתייה', 1000, 'USD', '2026-11-01T00:00:00.000Z')", (psid_hash(ALICE),))
    conn.close()
    page = client.get(page_path(bot, ALICE)).text
    assert f'<td class="what"><bdi>{RLO}gift</bdi>' in page and '<span class="tag">#<bdi>fun</bdi></span>' in page
    assert '<td class="what"><bdi>קפה</bdi>' in page and '<span class="tag">#<bdi>שתייה</bdi></span>' in page
    assert '<span><bdi>שתייה</bdi></span> <span class="num">3.00 USD of 10.00 USD</span>' in page


def test_a_category_is_escaped_in_the_chart_and_the_list(bot, client):
    say(client, ALICE, "thing 5 #a&b", day(5))
    page = client.get(page_path(bot, ALICE)).text
    assert "#a&amp;b" in page or "a&amp;b" in page
    assert "a&b" not in page


# ---- Headers ----

def _assert_locked_down(answer):
    headers = answer.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-robots-tag"].startswith("noindex")
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy


def test_every_report_answer_is_locked_down(bot, client, clock):
    say(client, ALICE, "coffee 4", day(5))
    path = page_path(bot, ALICE)
    answers = [client.get(path), client.get(path + "expenses.csv"), client.get("/report/style.css"),
               client.get(path + "?month=2026-13"), client.get("/report/nope/")]
    assert [answer.status for answer in answers] == [200, 200, 200, 400, 403]
    for answer in answers:
        _assert_locked_down(answer)


ERROR_ANSWERS = {  # (method, path after the person's link or absolute, status)
    "unknown file": ("GET", "nope", 404),
    "dot-dot": ("GET", "../", 404),
    "dot-dot, no slash": ("GET", "..", 404),
    "double slash": ("GET", "/", 404),
    "deeper": ("GET", "expenses.csv/x", 404),
    "no token": ("GET", "/report/", 404),
    "POST to the page": ("POST", "", 405),
    "POST to the CSV": ("POST", "expenses.csv", 405),
}


@pytest.mark.parametrize("method, suffix, status", ERROR_ANSWERS.values(), ids=ERROR_ANSWERS.keys())
def test_error_answers_under_report_are_locked_down_and_do_not_echo_the_link(bot, client, method, suffix, status):
    path = page_path(bot, ALICE)
    token = path.split("/")[2]
    answer = client.request(method, suffix if suffix.startswith("/report") else path + suffix)
    assert answer.status == status
    _assert_locked_down(answer)
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert token not in answer.text and token[:20] not in answer.text


def test_an_unexpected_fault_is_a_locked_down_500_without_the_link(bot, client):
    """A row no version of the bot writes (a currency code it does not know) breaks the page: the
    answer is still the plain page with every header, never a JSON echo of the path."""
    with sqlite3.connect(bot.config.db_path) as conn:
        conn.execute("INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
                     " occurred_at, created_at) VALUES (1, ?, 'm_x', 0, 100, 'XQQ', 'odd', ?, ?)",
                     (psid_hash(ALICE), "2026-11-05T12:00:00.000Z", "2026-11-05T12:00:00.000Z"))
    conn.close()
    path = page_path(bot, ALICE)
    answer = client.get(path)
    assert answer.status == 500
    _assert_locked_down(answer)
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert path.split("/")[2] not in answer.text


@pytest.mark.parametrize("suffix", ["", "expenses.csv", "?month=2026-10"])
def test_a_database_that_cannot_be_read_is_a_locked_down_503_not_a_500(bot, client, suffix, caplog):
    path = page_path(bot, ALICE)
    bot.config.db_path.unlink()
    bot.config.db_path.mkdir()  # a directory where the file was: nothing can open it
    with caplog.at_level(logging.INFO):
        answer = client.get(path + suffix)
    assert answer.status == 503
    _assert_locked_down(answer)
    token = path.split("/")[2]
    assert token not in answer.text
    assert all(token not in record.getMessage() and token not in str(getattr(record, "fields", ""))
               for record in caplog.records)
    assert [record.msg for record in caplog.records if getattr(record, "fields", None) is not None
            and record.msg == "database_read_failed"]


def test_the_page_has_no_script_and_no_inline_style(bot, client):
    say(client, ALICE, "coffee 4 #coffee", day(5))
    page = client.get(page_path(bot, ALICE)).text.lower()
    for forbidden in ("<script", "<style", "style=", "javascript:", "onload=", "onclick="):
        assert forbidden not in page
    assert '<link rel="stylesheet" href="../style.css">' in page


def test_the_stylesheet_is_css(client):
    answer = client.get("/report/style.css")
    assert answer.headers["content-type"] == "text/css; charset=utf-8"
    assert ".chart" in answer.text and "{{" not in answer.text


# ---- The CSV ----

def test_the_csv_holds_the_month_with_the_export_columns_and_sums_like_summary(bot, client):
    say(client, ALICE, "groceries 40.10 #groceries", day(2))
    say(client, ALICE, "+cmd 3", day(3))
    say(client, ALICE, "€7.25 lunch", day(4))
    say(client, ALICE, "taxi 12 #transport", day(19))
    say(client, ALICE, "last month 70", dt.datetime(2026, 10, 30, 12, tzinfo=dt.timezone.utc))
    say(client, BOB, "bob 1000", day(5))
    answer = client.get(page_path(bot, ALICE) + "expenses.csv?month=2026-11")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="expenses-2026-11.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert tuple(rows[0].keys()) == export.COLUMNS
    sums: dict[str, int] = {}
    for row in rows:
        sums[row["currency"]] = sums.get(row["currency"], 0) + int(row["amount_minor"])
    computed = client.get(f"/summary?psid_hash={psid_hash(ALICE)}&period=month", token=OPS_TOKEN).json()
    assert sums == {code: total["total_minor"] for code, total in computed["currencies"].items()}
    assert sums == {"USD": 40_10 + 3_00 + 12_00, "EUR": 7_25}
    assert rows[1]["description"] == "'+cmd"  # a spreadsheet does not run it


def test_the_csv_of_the_current_month_by_default(bot, client):
    say(client, ALICE, "tea 2", day(6))
    answer = client.get(page_path(bot, ALICE) + "expenses.csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="expenses-2026-11.csv"'
    [row] = list(csv.DictReader(io.StringIO(answer.text)))
    assert (row["description"], row["amount_minor"], row["currency"]) == ("tea", "200", "USD")


# ---- Rate limit ----

def test_report_routes_are_rate_limited_per_address(bot, client):
    for _ in range(report.RATE_PER_MINUTE):
        assert client.get("/report/guess/").status == 403
    refused = client.get(page_path(bot, ALICE))  # even a good link, from this address, this minute
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    _assert_locked_down(refused)
    assert client.get("/healthz").status == 200  # other routes are not limited


def test_x_forwarded_for_from_a_peer_nobody_named_buys_no_more_requests(live_server):
    """`serve` reached directly on loopback, with EXPENSEBOT_TRUSTED_PROXIES unset: a new
    X-Forwarded-For on every request must not make a new client of each one."""
    with requests.Session() as session:
        def status(number: int) -> int:
            return session.get(f"{live_server}/report/guess/", timeout=10,
                               headers={"X-Forwarded-For": f"198.51.100.{number % 250 + 1}"}).status_code
        assert [status(number) for number in range(report.RATE_PER_MINUTE)] == [403] * report.RATE_PER_MINUTE
        assert status(report.RATE_PER_MINUTE) == 429


LOOPBACK = frozenset(ipaddress.ip_address(value) for value in ("127.0.0.1", "::1"))


@pytest.mark.parametrize("environ, trusted, address", [
    ({"REMOTE_ADDR": "203.0.113.7"}, LOOPBACK, "203.0.113.7"),
    ({"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, LOOPBACK, "203.0.113.7"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, LOOPBACK, "198.51.100.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 198.51.100.1"}, LOOPBACK, "198.51.100.1"),
    ({"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "2001:db8::5"}, LOOPBACK, "2001:db8::5"),
    ({"REMOTE_ADDR": "::ffff:127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, LOOPBACK, "198.51.100.1"),
    ({"REMOTE_ADDR": "::ffff:203.0.113.7", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, LOOPBACK, "203.0.113.7"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "::ffff:198.51.100.1"}, LOOPBACK, "198.51.100.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-address"}, LOOPBACK, "127.0.0.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": ""}, LOOPBACK, "127.0.0.1"),
    ({"REMOTE_ADDR": "127.0.0.1"}, LOOPBACK, "127.0.0.1"),
    ({}, LOOPBACK, ""),
    # Nobody named (the default): loopback is a peer like any other.
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, frozenset(), "127.0.0.1"),
    ({"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "2001:db8::5"}, frozenset(), "::1"),
    # A proxy on another machine, named: believed; loopback, not named: not.
    ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.1"},
     frozenset({ipaddress.ip_address("10.0.0.2")}), "198.51.100.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"},
     frozenset({ipaddress.ip_address("10.0.0.2")}), "127.0.0.1"),
])
def test_the_client_address_believes_only_a_named_proxys_last_entry(environ, trusted, address):
    assert report.client_address(environ, trusted) == address


@pytest.mark.parametrize("value, peers", [
    ("", set()),
    ("127.0.0.1", {"127.0.0.1"}),
    (" 127.0.0.1, ::1 ,", {"127.0.0.1", "::1"}),
    ("::ffff:10.0.0.2", {"10.0.0.2"}),   # compared as the IPv4 address, like the peer
])
def test_trusted_proxies_are_read_as_a_comma_separated_list(value, peers):
    config = Config.from_env({"EXPENSEBOT_TRUSTED_PROXIES": value})
    assert {str(peer) for peer in report.trusted_peers(config)} == peers


@pytest.mark.parametrize("value, named", [
    ("nginx", "'nginx' is not an IP address"),
    ("127.0.0.1, 10.0.0.0/8, localhost", "'10.0.0.0/8', 'localhost' are not IP addresses"),
])
def test_a_trusted_proxy_that_is_not_an_ip_address_is_one_line_naming_the_variable(value, named):
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"EXPENSEBOT_TRUSTED_PROXIES": value})
    [problem] = raised.value.problems
    assert problem.startswith(f"EXPENSEBOT_TRUSTED_PROXIES: {named} ")


@pytest.mark.parametrize("address, key", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),   # one household or phone gets a whole /64
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("", ""),
])
def test_an_ipv6_client_is_limited_by_its_64_block(address, key):
    assert report.limit_key(address) == key


def test_behind_the_local_proxy_each_client_has_its_own_limit(server_process):
    """`run.py serve` on real waitress with EXPENSEBOT_TRUSTED_PROXIES=127.0.0.1, requests from
    loopback as the nginx block sends them.

    Waitress drops X-Forwarded-For unless told not to: then every client behind the proxy would
    share one limit, and one of them could lock everyone out. And an IPv6 client counts by its /64,
    so new addresses from its own block do not buy it more requests.
    """
    server = server_process(EXPENSEBOT_PUBLIC_URL=PUBLIC_URL, EXPENSEBOT_TRUSTED_PROXIES="127.0.0.1")
    url = f"{server.url}/report/guess/"
    with requests.Session() as session:
        def status(forwarded_for: str) -> int:
            return session.get(url, headers={"X-Forwarded-For": forwarded_for}, timeout=10).status_code
        assert [status(f"2001:db8:7:7::{number + 1:x}")
                for number in range(report.RATE_PER_MINUTE)] == [403] * report.RATE_PER_MINUTE
        assert status("2001:db8:7:7::ffff") == 429
        assert status("2001:db8:7:8::1") == 403   # another /64: another client
        assert status("198.51.100.9") == 403      # another client behind the same proxy


# ---- The chat ----

def test_report_in_the_chat_answers_with_a_button_to_the_page(bot, client, graph):
    say(client, ALICE, "coffee 4.50 #coffee", day(20, 10))
    say(client, ALICE, "Report", day(20, 11))
    message = graph.requests[-1]["json"]["message"]
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["text"] == "Your report for November 2026"
    [button] = payload["buttons"]
    assert button["type"] == "web_url" and button["title"] == "Open report"
    assert button["url"].startswith(PUBLIC_URL + "/report/")
    page = client.get(button["url"].removeprefix(PUBLIC_URL))
    assert page.status == 200 and "coffee" in page.text


def test_report_without_a_public_url_says_it_is_not_set_up(tmp_path, graph, open_service):
    config = make_config(tmp_path, fb_page_access_token="test-page-token", fb_graph_url=graph.url)
    service = open_service(config, replay_interval=0.05,
                           reply_backoff=(0, 0, 0))
    say(Client(service), ALICE, "report", NOW)
    assert graph.texts == [words.REPORT_NOT_SET_UP]


def test_report_is_a_command_not_an_expense():
    settings = Settings("USD", "UTC")
    today = dt.date(2026, 11, 29)
    assert meaning.read_command("report", settings, today) == meaning.Command("report")
    assert meaning.read_command(" Report! ", settings, today) == meaning.Command("report")
    assert meaning.read_command("report 5", settings, today).name == "did_you_mean"
    assert meaning.read_command("MENU_REPORT", settings, today) == meaning.Command("report")


def test_the_link_never_reaches_a_log_line(tmp_path, caplog, clock, open_service):
    config = make_config(tmp_path, public_url=PUBLIC_URL)  # no page token: replies are logged
    service = open_service(config, replay_interval=0.05, now=clock)
    with caplog.at_level(logging.INFO):
        say(Client(service), ALICE, "report", NOW)
    service.close()  # stopped, so its shutdown lines are checked too
    logged = [record for record in caplog.records if record.msg == "reply_logged"]
    assert [record.fields["text"] for record in logged] == ["Your report for November 2026"]
    token = report.make_token(report.link_key(config.psid_hash_key), psid_hash(ALICE), NOW)
    assert all(token not in str(getattr(record, "fields", "")) and token not in record.getMessage()
               for record in caplog.records)


@pytest.mark.parametrize("level, message", [
    (logging.INFO, "Client disconnected while serving %s"),   # waitress, channel.py: a phone closing
    (logging.ERROR, "Exception while serving %s"),            # the tab mid-download, or a crash
])
@pytest.mark.parametrize("suffix", ["/", "/expenses.csv", ""])
def test_waitress_lines_naming_a_report_path_never_carry_the_token(bot, level, message, suffix):
    """waitress writes the request path into these lines; under /report/ the path is the link."""
    token = page_path(bot, ALICE).split("/")[2]
    stream = io.StringIO()
    logs.configure(stream)
    try:
        logging.getLogger("waitress").log(level, message % f"/report/{token}{suffix}")
        logging.getLogger("waitress").log(level, message % "/report/style.css")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert token not in stream.getvalue() and token[:16] not in stream.getvalue()
    assert first["message"] == message % f"/report/<token>{suffix}"
    assert second["message"] == message % "/report/style.css"


@pytest.mark.parametrize("doc", ["OPERATIONS.md", "REPORT.md"])
def test_the_documented_proxy_keeps_report_links_out_of_its_access_log(doc):
    """nginx logs every request line by default: under /report/ that line is a person's link."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    block = text.split("location /report/ {", 1)[1].split("}", 1)[0]
    assert "access_log off;" in block
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in block


# ---- The demo ----

def test_the_demo_prints_a_local_link_that_opens_the_page_and_its_csv(tmp_path):
    """While the demo runs, the printed link works in a browser on this machine (here: requests)."""
    printed: list[str] = []
    fetched: dict[str, requests.Response] = {}
    lines = iter(["coffee 4.50 #coffee", "<b>bold</b> 2", "report"])

    def read(prompt: str) -> str:
        link = next((line.split("] ", 1)[1] for line in printed if line.startswith("     [Open report] ")), None)
        if link and not fetched:  # the demo is still running: open the page now
            fetched["page"] = requests.get(link, timeout=10)
            fetched["csv"] = requests.get(link + "expenses.csv", timeout=10)
        return next(lines, "quit")

    assert demo.run(tmp_path / "demo.db", None, "UTC", "USD", read=read, write=printed.append) == 0
    assert any(line.startswith("bot> Your report for ") for line in printed)
    assert fetched["page"].status_code == 200
    assert "coffee" in fetched["page"].text and "&lt;b&gt;bold&lt;/b&gt;" in fetched["page"].text
    assert fetched["page"].headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(fetched["csv"].text)))
    assert sorted(row["amount_minor"] for row in rows) == ["200", "450"]


def test_a_budget_on_the_page_counts_a_converted_expense_as_the_chat_does(tmp_path, ecb, open_service):
    service = converting_bot(tmp_path, open_service, Clock(ABROAD), ecb.url)
    client = Client(service)
    say(client, ALICE, "budget food 10", ABROAD - dt.timedelta(minutes=20))
    spend_abroad(service)
    [(food,)] = query(service, "SELECT sum(converted_minor) FROM expenses WHERE category = 'food'"
                               " AND converted_currency = 'EUR'")  # the sushi; the pho has no ECB rate
    page = client.get(page_path(service, ALICE, made=ABROAD)).text
    assert f"{format_amount(food, 'EUR')} of 10.00 EUR" in page
    with service.db.connection() as conn:
        [use] = summary.budget_use(conn, psid_hash(ALICE), ABROAD.date(), dt.timezone.utc)
    assert use.spent_minor == food
