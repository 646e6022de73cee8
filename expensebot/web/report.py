"""A person's report page: signed, expiring links; the month drawn from the rows as HTML and SVG.

The token's layout and every check on it, the rate limit's client address, heavy months: docs/REPORT.md.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import re
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import bottle

from expensebot import store, summary, times
from expensebot.config import Config
from expensebot.db import Database
from expensebot.limits import RateLimiter
from expensebot.money import format_amount
from expensebot.web import export
from expensebot.web.reads import database_required

LINK_LIFETIME = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(minutes=5)  # a token "made" this far in the future still counts
# 0xFF first, a byte no UTF-8 text has: no psid_hash can ever equal the links' key (docs/REPORT.md).
KEY_PURPOSE = b"\xffexpensebot report links v1"
TOKEN_VERSION = 1
_TOKEN = struct.Struct(">B32sII")  # version, psid_hash (32 bytes), made, expires (Unix seconds)
_MAC_BYTES = 32
_TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(_TOKEN.size + _MAC_BYTES)).rstrip(b"="))
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
RATE_PER_MINUTE = 60     # report requests per client address per minute (a page is 2: HTML and CSS)
RATE_ADDRESSES = 10_000  # addresses remembered at once; the least recent is forgotten first
MAX_LISTED = 1_000       # expenses listed on a page; the CSV always has all of them
# A month of 100,000 expenses takes about a second of CPU as CSV (bench/bench_report_load.py), and
# Python runs one thread at a time: two at once keep the machine busy without starving webhooks.
RENDERS_AT_ONCE = 2
RENDERS_WAITING = 2      # requests that may wait for a turn (each holds a thread); more get 503 at once
RENDER_PATIENCE = 2.0    # seconds one waits before it is answered 503 with Retry-After
RENDER_THREADS = RENDERS_AT_ONCE + RENDERS_WAITING  # request threads report pages can hold at most
BUSY_RETRY_AFTER = 5     # seconds, the Retry-After of that 503
# Shown wherever the page shows converted money: the ECB asks its reference rates to be attributed.
RATES_SOURCE = "ECB euro reference rates"
RATES_SOURCE_URL = ("https://www.ecb.europa.eu/stats/policy_and_exchange_rates/"
                    "euro_reference_exchange_rates/html/index.en.html")
# One list for every call: bottle.template caches a compiled template by this list's id.
VIEWS = [str(Path(__file__).resolve().parent / "views")]
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}


def link_key(psid_hash_key: str) -> bytes:
    """The links' signing key: derived from PSID_HASH_KEY for this one purpose."""
    return hmac.new(psid_hash_key.encode("utf-8"), KEY_PURPOSE, hashlib.sha256).digest()


def make_token(key: bytes, psid_hash: str, now: dt.datetime) -> str:
    """Sign a token naming the person, when it was made and when it expires."""
    made = int(now.timestamp())
    body = _TOKEN.pack(TOKEN_VERSION, bytes.fromhex(psid_hash), made, made + int(LINK_LIFETIME.total_seconds()))
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


@dataclasses.dataclass(frozen=True)
class Link:
    psid_hash: str
    made: int  # Unix seconds


def read_token(key: bytes, token: str, now: dt.datetime) -> Link | None:
    """Whose link a token is and when it was made, or None when it is malformed, tampered with, or out of date."""
    if len(token) != _TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        return None
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # Only the canonical spelling: no second token that decodes to the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    body, mac = raw[:_TOKEN.size], raw[_TOKEN.size:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        return None
    version, psid_hash, made, expires = _TOKEN.unpack(body)
    moment = now.timestamp()
    if version != TOKEN_VERSION or made > moment + CLOCK_SKEW.total_seconds() or moment >= expires:
        return None
    # Even one signed with the right key may not last longer than LINK_LIFETIME.
    if expires - made > LINK_LIFETIME.total_seconds():
        return None
    return Link(psid_hash.hex(), made)


def link_for(config: Config, psid_hash: str, now: dt.datetime) -> str | None:
    """The person's report link, or None when EXPENSEBOT_PUBLIC_URL is not set."""
    if not config.public_url:
        return None
    return f"{config.public_url}/report/{make_token(link_key(config.psid_hash_key), psid_hash, now)}/"


def trusted_peers(config: Config) -> frozenset:
    """The addresses of EXPENSEBOT_TRUSTED_PROXIES, as client_address compares them."""
    return frozenset(_unmapped(ipaddress.ip_address(value)) for value in config.trusted_proxies)


class RenderTurns:
    """At most `at_once` pages or CSVs drawn at once; `waiting` more requests wait up to `patience`
    seconds for a turn, and any beyond those are turned away at once."""

    def __init__(self, at_once: int = RENDERS_AT_ONCE, waiting: int = RENDERS_WAITING,
                 patience: float = RENDER_PATIENCE):
        self._turns = threading.BoundedSemaphore(at_once)
        self._places = threading.BoundedSemaphore(at_once + waiting)
        self.patience = patience

    @contextlib.contextmanager
    def turn(self) -> Iterator[bool]:
        """Yield True while the request has its turn, or False when it cannot have one soon."""
        if not self._places.acquire(blocking=False):
            yield False
            return
        try:
            started = self._turns.acquire(timeout=self.patience)
            try:
                yield started
            finally:
                if started:
                    self._turns.release()
        finally:
            self._places.release()


def client_address(environ: dict, trusted: frozenset = frozenset()) -> str:
    """The address to rate-limit: the peer, or the last X-Forwarded-For entry when the peer is `trusted`
    (trusted_peers): the one that proxy appended. An IPv4-mapped address counts as the IPv4 address."""
    peer = environ.get("REMOTE_ADDR", "")
    try:
        address = _unmapped(ipaddress.ip_address(peer))
    except ValueError:
        return peer
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    if address in trusted and forwarded:
        with contextlib.suppress(ValueError):
            return str(_unmapped(ipaddress.ip_address(forwarded)))
    return str(address)


def limit_key(address: str) -> str:
    """What the limiter counts by: an IPv4 address, or the /64 block of an IPv6 address (one subscriber's)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64)))  # int: drops any %scope
    return str(parsed)


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    return getattr(address, "ipv4_mapped", None) or address


# ---- The month, from the rows ----

@dataclasses.dataclass(frozen=True)
class Bar:
    name: str      # the whole category name (tables)
    label: str     # the name shortened to fit beside the amount (charts)
    amount: str    # formatted, e.g. "12.50 USD"
    percent: float  # of the chart's width
    tone: str       # colour class: tone0..tone7, tone-none for uncategorized


@dataclasses.dataclass(frozen=True)
class DayColumn:
    day: int
    amount: str
    x: float       # percent of the width
    width: float   # percent
    y: float       # pixels from the top
    height: float  # pixels


@dataclasses.dataclass(frozen=True)
class CurrencyBlock:
    currency: str
    total: str
    count: int
    categories: tuple[Bar, ...]
    days: tuple[DayColumn, ...]
    day_ticks: tuple[tuple[int, float], ...]  # (day, x percent) labels under the day chart
    highest_day: str


@dataclasses.dataclass(frozen=True)
class BudgetLine:
    label: str
    spent: str
    limit: str
    percent: float  # spent of the budget, capped at 100 for the bar
    used: int       # whole percent, uncapped
    over: str       # "" or how much over, formatted
    state: str      # within | near (90% or more) | over


@dataclasses.dataclass(frozen=True)
class ConvertedBlock:
    """The month in the person's currency, each expense at its own day's rate (docs/REPORT.md)."""

    currency: str
    total: str                        # formatted, e.g. "24.35 EUR"
    count: int                        # expenses in the total
    pending: int                      # waiting for their rate: not in the total yet
    unconverted: tuple[str, ...]      # currencies with no ECB rate: never in the total
    categories: tuple[Bar, ...]       # from the converted amounts


@dataclasses.dataclass(frozen=True)
class Listed:
    date: str
    description: str
    category: str
    amount: str
    converted: str = ""  # '≈ 2.85 EUR (ECB 2026-10-30)', 'rate pending', ...; '' in the person's currency
    recurring: str = ""  # the period of the recurring rule that added it ('monthly'); '' for one written


APPROX = "\u2248"  # before a converted amount: rounded, and at one day's rate
DAY_CHART_HEIGHT = 120  # pixels of the tallest day's bar
DAY_CHART_TOP = 8


def parse_month(value: str | None, today: dt.date) -> dt.date | None:
    """The first day of the month `YYYY-MM` (today's month when absent), or None when invalid."""
    if not value:
        return today.replace(day=1)
    match = _MONTH_RE.fullmatch(value)
    # The last year is 9998: a month's end is the next month's first day, and year 10000 has none.
    if not match or not 2000 <= int(match[1]) <= 9998 or not 1 <= int(match[2]) <= 12:
        return None
    return dt.date(int(match[1]), int(match[2]), 1)


def next_month(first: dt.date) -> dt.date:
    return (first + dt.timedelta(days=32)).replace(day=1)


def month_page(conn: sqlite3.Connection, psid_hash: str, first: dt.date, today: dt.date, currency: str,
               zone: dt.tzinfo, converting: bool = False) -> dict:
    """Everything the page template shows: the month in the person's zone summed by SQLite per category
    and per day, and its newest expenses (integers until formatted). `converting` (RATES_URL is not
    "off") adds the month converted to `currency` when it has money in any other currency."""
    before = (first - dt.timedelta(days=1)).replace(day=1)
    after = next_month(first)
    day_starts = [summary.day_bounds(first + dt.timedelta(days=number), zone)[0]
                  for number in range((after - first).days + 1)]
    start, end = day_starts[0], day_starts[-1]
    categories: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    counts: dict[str, int] = collections.Counter()
    sums = store.category_totals(conn, psid_hash, start, end)  # a few rows per category, not per expense
    for row in sums:
        categories[row["currency"]][row["category"] or ""] += row["total_minor"]
        counts[row["currency"]] += row["count"]
    per_day: dict[str, dict[int, int]] = collections.defaultdict(dict)
    for row in store.day_sums(conn, psid_hash, day_starts):
        per_day[row["currency"]][row["day"]] = row["total_minor"]
    # The person's own currency first, then the most used.
    order = sorted(counts, key=lambda code: (code != currency, -counts[code], code))
    count = sum(counts.values())
    converting = converting and any(code != currency for code in counts)
    listed = [_listed(row, zone, currency if converting else None)
              for row in store.latest_expenses_between(conn, psid_hash, start, end, MAX_LISTED)]
    return {
        "title": f"{first:%B %Y}",
        "month": f"{first:%Y-%m}",
        "previous": f"{before:%Y-%m}" if before.year >= 2000 else "",
        "previous_label": _step_label(before, first),
        "next": f"{after:%Y-%m}" if after <= today.replace(day=1) else "",
        "next_label": _step_label(after, first),
        "blocks": [_currency_block(code, categories[code], counts[code], per_day[code], first) for code in order],
        "converted": _converted_block(sums, currency) if converting else None,
        "rates_source": RATES_SOURCE,
        "rates_source_url": RATES_SOURCE_URL,
        "budgets": _budget_lines(summary.budget_use(conn, psid_hash, first, zone)),
        "listed": listed,
        "listed_converted": any(item.converted.startswith(APPROX) for item in listed),  # then the source too
        "count": count,
        "unlisted": max(0, count - MAX_LISTED),
        "day_chart_bottom": DAY_CHART_TOP + DAY_CHART_HEIGHT,
    }


def _currency_block(currency: str, totals: dict[str, int], count: int, per_day: dict[int, int],
                    first: dt.date) -> CurrencyBlock:
    length = (next_month(first) - first).days
    highest = max(per_day.values(), default=0)
    slot = 100 / length
    days = []
    for day in range(1, length + 1):
        amount = per_day.get(day, 0)
        # At least 2 pixels: a small day still shows.
        height = max(2.0, round(DAY_CHART_HEIGHT * amount / (highest or 1), 1)) if amount else 0
        days.append(DayColumn(day, format_amount(amount, currency), round((day - 1) * slot + slot * 0.15, 3),
                              round(slot * 0.7, 3), DAY_CHART_TOP + DAY_CHART_HEIGHT - height, height))
    ticks = tuple((day, round((day - 0.5) * slot, 3)) for day in sorted({1, 8, 15, 22, length}))
    return CurrencyBlock(currency, format_amount(sum(totals.values()), currency), count,
                         _category_bars(totals, currency), tuple(days), ticks, format_amount(highest, currency))


def _category_bars(totals: dict[str, int], currency: str) -> tuple[Bar, ...]:
    """One bar per category, largest first, each as long as its share of the largest."""
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    largest = ranked[0][1] if ranked else 1
    bars = []
    for index, (category, total) in enumerate(ranked):
        name = category or "uncategorized"
        # The chart's label leaves room for the amount beside it; the table keeps the whole name.
        label = name if len(name) <= 24 else name[:23] + "\u2026"
        bars.append(Bar(name, label, format_amount(total, currency), _share(total, largest),
                        f"tone{index % 8}" if category else "tone-none"))
    return tuple(bars)


def _converted_block(sums: list, currency: str) -> ConvertedBlock:
    """The month's converted total and categories, from the SQL sums of store.category_totals: only
    what was converted to the person's current currency counts (the rest waits, or never converts)."""
    total = summary.converted(sums, currency)
    per_category: dict[str, int] = collections.Counter()
    for row in sums:
        if row["converted_currency"] == currency and row["converted_count"]:
            per_category[row["category"] or ""] += row["converted_minor"]
    return ConvertedBlock(currency, format_amount(total.total_minor, currency), total.count, total.pending,
                          total.unconverted, _category_bars(per_category, currency))


def _budget_lines(uses: list[summary.BudgetUse]) -> list[BudgetLine]:
    """The month's budgets as the chat counts them (an expense converted to a budget's currency counts in it)."""
    lines = []
    for use in uses:
        category, limit, currency, spent = use.category, use.amount_minor, use.currency, use.spent_minor
        used = spent * 100 // limit
        lines.append(BudgetLine(category or "Everything", format_amount(spent, currency),
                                format_amount(limit, currency), min(100.0, _share(spent, limit)), used,
                                format_amount(spent - limit, currency) if spent > limit else "",
                                "over" if spent > limit else "near" if used >= 90 else "within"))
    return lines


def _listed(row, zone: dt.tzinfo, converting_to: str | None) -> Listed:
    when = dt.datetime.fromisoformat(row["occurred_at"]).astimezone(zone)
    note = _conversion_note(row, converting_to) if converting_to and row["currency"] != converting_to else ""
    return Listed(f"{when:%b} {when.day}", row["description"] or "expense", row["category"] or "",
                  format_amount(row["amount_minor"], row["currency"]), note, row["recurring"])


def _conversion_note(row, currency: str) -> str:
    """What an expense in another currency comes to in the person's: '≈ 2.85 EUR (ECB 2026-10-30)',
    or why it does not (yet). One converted to a currency the person had before waits to be redone."""
    source = row["rate_source"]
    if source is None or row["converted_currency"] != currency:
        return "rate pending"
    if source == "none":
        return "no ECB rate: not converted"
    day = {"ecb": f"ECB {row['rate_day']}", "ecb-provisional": f"ECB {row['rate_day']}, provisional",
           "person": f"your rate {row['rate']}"}.get(source, source)
    return f"{APPROX} {format_amount(row['converted_minor'], currency)} ({day})"


def _step_label(month: dt.date, shown: dt.date) -> str:
    """'Oct' beside November; 'Dec 2025' beside January 2026."""
    return f"{month:%b}" if month.year == shown.year else f"{month:%b %Y}"


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole > 0 and part > 0 else 0.0


# ---- The routes ----

def install_report(app: bottle.Bottle, config: Config, db: Database,
                   now: Callable[[], dt.datetime] = times.utc_now,
                   turns: RenderTurns | None = None) -> None:
    """Add the report routes to the app: the page, its CSV, its stylesheet."""
    key = link_key(config.psid_hash_key)
    limiter = RateLimiter(RATE_PER_MINUTE, RATE_ADDRESSES)
    turns = turns or RenderTurns()
    trusted = trusted_peers(config)

    def person(conn: sqlite3.Connection, token: str) -> str | None:
        """Whose link this is, unless it does not check out or was made before that person erased their data."""
        link = read_token(key, token, now())
        if link is None or store.erased_since(conn, link.psid_hash, times.iso_utc(link.made * 1000)):
            return None
        return link.psid_hash

    @app.get("/report/style.css")
    def stylesheet():
        if refused := _limited(limiter, trusted):
            return refused
        _secure("text/css; charset=utf-8")
        return _render("report.css")

    @app.get("/report/<token>")
    @database_required
    def without_slash(token: str):
        if refused := _limited(limiter, trusted):
            return refused
        with db.connection() as conn:
            if person(conn, token) is None:
                return error_page(403)
        _secure("text/plain; charset=utf-8")
        bottle.response.status = 301
        bottle.response.set_header("Location", f"{token}/")  # relative: right behind any proxy prefix
        return ""

    @app.get("/report/<token>/")
    @database_required
    def page(token: str):
        if refused := _limited(limiter, trusted):
            return refused
        with db.connection() as conn:
            psid_hash = person(conn, token)
            if psid_hash is None:
                return error_page(403)
            own = store.settings_of(conn, psid_hash, config.defaults)
            today = now().astimezone(own.zone).date()
            first = parse_month(bottle.request.query.get("month"), today)
            if first is None:
                return error_page(400)
            with turns.turn() as started:
                if not started:
                    return error_page(503, BUSY_RETRY_AFTER)
                html = _render("report", **month_page(conn, psid_hash, first, today, own.currency, own.zone,
                                                      converting=config.rates_url != "off"))
        _secure("text/html; charset=utf-8")
        return html

    @app.get("/report/<token>/expenses.csv")
    @database_required
    def csv(token: str):
        if refused := _limited(limiter, trusted):
            return refused
        with contextlib.ExitStack() as held:
            conn = held.enter_context(db.connection())
            psid_hash = person(conn, token)
            if psid_hash is None:
                return error_page(403)
            zone = store.settings_of(conn, psid_hash, config.defaults).zone
            first = parse_month(bottle.request.query.get("month"), now().astimezone(zone).date())
            if first is None:
                return error_page(400)
            if not held.enter_context(turns.turn()):
                return error_page(503, BUSY_RETRY_AFTER)
            start, end = summary.day_bounds(first, zone)[0], summary.day_bounds(next_month(first), zone)[0]
            rows = store.expenses_between(conn, psid_hash, start, end)
            _secure("text/csv; charset=utf-8")
            bottle.response.set_header("Content-Disposition", f'attachment; filename="expenses-{first:%Y-%m}.csv"')
            # The connection and the turn go with the rows, and are let go once they are sent.
            return _streamed(export.expense_chunks(rows), held.pop_all())


def _streamed(chunks: Iterator[str], held: contextlib.ExitStack) -> Iterator[str]:
    """Yield the chunks, then close what they are read through (also when the client goes away)."""
    with held:
        yield from chunks


_PLAIN = {400: ("Bad request", "That month cannot be shown."),
          403: ("Forbidden", "This link is not valid. Type \u201creport\u201d in the chat for a new one."),
          404: ("Not found", "There is no page here."),
          405: ("Method not allowed", "This address only shows pages."),
          429: ("Too many requests", "Too many requests from your address. Try again in a minute."),
          503: ("Unavailable", "Your report cannot be shown right now. Try again in a minute.")}
_PLAIN_OTHER = ("Error", "Your report cannot be shown. Type \u201creport\u201d in the chat for a new link.")


def is_report_path(path: str) -> bool:
    return path == "/report" or path.startswith("/report/")


def error_page(status: int, retry_after: int = 0) -> str:
    """A plain, locked-down page that says only what went wrong in general (never why a token failed,
    never the path); also the app's error answer under /report/ (404, 405, 500, ...)."""
    bottle.response.status = status
    _secure("text/html; charset=utf-8")
    if retry_after:
        bottle.response.set_header("Retry-After", str(retry_after))
    title, text = _PLAIN.get(status, _PLAIN_OTHER)
    return _render("report_plain", status=status, title=title, text=text)


def _limited(limiter: RateLimiter, trusted: frozenset) -> str | None:
    seconds = limiter.wait(limit_key(client_address(bottle.request.environ, trusted)))
    return error_page(429, max(1, math.ceil(seconds))) if seconds else None


def _secure(content_type: str) -> None:
    bottle.response.content_type = content_type
    for name, value in HEADERS.items():
        bottle.response.set_header(name, value)


def _render(name: str, **values) -> str:
    return bottle.template(name, template_lookup=VIEWS, **values)
