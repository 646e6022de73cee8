"""The ECB's euro reference rates: read from its files, kept in `rates`, and the one rule that converts.

The rule (docs/CURRENCIES.md): an expense is converted at the rates of its rate day, the latest
ECB publication day on or before its local date; rate(A→B) = per_eur(B) / per_eur(A), EUR being 1;
the converted amount is amount × rate, exact (fractions, no intermediate rounding), rounded half
to even only at the end, to B's minor unit. Nothing here fetches: `Refresher` (background) does.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import sqlite3
import zipfile
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from xml.etree import ElementTree

from expensebot import store, times
from expensebot.money import minor_digits
from expensebot.settings import Settings, settings_from

# Every currency the ECB has published a euro reference rate for since 1999 (some no longer are:
# their last day is their last rate). EUR is the base. Any other currency is never converted.
ECB_CURRENCIES = frozenset("""
    EUR USD JPY BGN CYP CZK DKK EEK GBP HUF LTL LVL MTL PLN ROL RON SEK SIT SKK CHF ISK NOK HRK RUB
    TRL TRY AUD BRL CAD CNY HKD IDR ILS INR KRW MXN MYR NZD PHP SGD THB ZAR
""".split())
# How a conversion was made, in `expenses.rate_source`. NULL there: waiting for its rate.
SAME, ECB, PROVISIONAL, PERSON, NONE = "same", "ecb", "ecb-provisional", "person", "none"
MAX_HISTORY_BYTES = 64 << 20  # the unzipped history is ~2 MB; a file claiming more is not the ECB's
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_XML_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"


class RatesError(ValueError):
    """A rates file that is not what the ECB publishes: nothing of it is loaded."""


@dataclasses.dataclass(frozen=True)
class Conversion:
    """An amount converted to `currency`, or why not. `source` None: its rate is not known yet."""

    currency: str
    minor: int | None = None
    rate: str | None = None
    day: str | None = None
    source: str | None = None

    @property
    def pending(self) -> bool:
        return self.source is None

    @property
    def columns(self) -> tuple:
        """converted_minor, converted_currency, rate, rate_day, rate_source, as stored (all NULL while pending)."""
        return self.minor, None if self.pending else self.currency, self.rate, self.day, self.source


# ---- the ECB's files -----------------------------------------------------------------------------

def parse_history(data: bytes) -> list[tuple[str, str, str]]:
    """(day, currency, per_eur) of eurofxref-hist.zip: one CSV, a Date column, 'N/A' where none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [info for info in archive.infolist() if info.filename.endswith(".csv")]
            if len(names) != 1 or names[0].file_size > MAX_HISTORY_BYTES:
                raise RatesError("the zip does not hold the one CSV the ECB publishes")
            text = archive.read(names[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError, OSError) as exc:
        raise RatesError(f"not a readable zip: {exc}") from None
    rows = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(rows, [])]
    if not header or header[0] != "Date":
        raise RatesError("the CSV does not start with a Date column")
    found = []
    for row in rows:
        if not row:
            continue
        day = row[0].strip()
        for currency, cell in zip(header[1:], row[1:]):
            cell = cell.strip()
            if currency and cell not in ("", "N/A"):
                found.append(_checked(day, currency, cell))
    return _nonempty(found)


def parse_daily(data: bytes) -> list[tuple[str, str, str]]:
    """(day, currency, per_eur) of eurofxref-hist-90d.xml (or eurofxref-daily.xml): gesmes XML."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise RatesError(f"not well-formed XML: {exc}") from None
    found = []
    for day_cube in root.iter(f"{_XML_NS}Cube"):
        day = day_cube.get("time")
        if day is None:
            continue
        for cube in day_cube:
            found.append(_checked(day, cube.get("currency") or "", cube.get("rate") or ""))
    return _nonempty(found)


def _checked(day: str, currency: str, per_eur: str) -> tuple[str, str, str]:
    try:
        dt.date.fromisoformat(day)
        value = Decimal(per_eur)
    except (ValueError, InvalidOperation):
        raise RatesError(f"a bad value on {day[:10]!r}: {currency[:3]!r} {per_eur[:20]!r}") from None
    if not _DAY.match(day) or not re.fullmatch(r"[A-Z]{3}", currency) or not value.is_finite() or value <= 0:
        raise RatesError(f"a bad value on {day[:10]!r}: {currency[:3]!r} {per_eur[:20]!r}")
    return day, currency, per_eur


def _nonempty(found: list) -> list:
    if not found:
        raise RatesError("no rates in the file")
    return found


# ---- the table -----------------------------------------------------------------------------------

def keep(conn: sqlite3.Connection, found: list[tuple[str, str, str]], source: str = ECB) -> int:
    """Keep the rates found (a corrected rate replaces the old one); return how many were new or changed."""
    before = conn.total_changes
    conn.executemany(
        "INSERT INTO rates (day, currency, per_eur, source) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (day, currency) DO UPDATE SET per_eur = excluded.per_eur, source = excluded.source "
        "WHERE per_eur != excluded.per_eur",
        [(day, currency, per_eur, source) for day, currency, per_eur in found])
    return conn.total_changes - before


def newest_day(conn: sqlite3.Connection) -> str | None:
    return conn.execute("SELECT max(day) FROM rates").fetchone()[0]


# ---- the rule ------------------------------------------------------------------------------------

def convert_expenses(conn: sqlite3.Connection, ids: list[int], defaults: Settings, now: dt.datetime) -> int:
    """Convert these expenses to their person's currency by the table; return how many changed.

    The background's (what waits); the write path converts its new expenses as it inserts them.
    """
    changed = 0
    newest = newest_day(conn)
    for row in store.expenses_for_conversion(conn, ids):
        own = settings_from(row["own_currency"], row["own_timezone"], defaults)
        conversion = convert_for(conn, row["amount_minor"], row["currency"], row["occurred_at"], own, now, newest)
        changed += store.set_conversion(conn, row["id"], conversion)
    return changed


def convert_for(conn: sqlite3.Connection, amount_minor: int, currency: str, occurred_at: str, own: Settings,
                now: dt.datetime, newest: str | None = None) -> Conversion:
    """An expense's conversion to its person's currency, its date and today taken in their zone."""
    local_day = times.local_date(times.ms_from_iso(occurred_at), own.zone)
    return convert(conn, amount_minor, currency, own.currency, local_day, now.astimezone(own.zone).date(), newest)


def convert(conn: sqlite3.Connection, amount_minor: int, currency: str, target: str, local_day: dt.date,
            today: dt.date, newest: str | None = None) -> Conversion:
    """The conversion of one expense to `target`, by the rates in the table; `newest`: newest_day(), if known."""
    if currency == target:
        return Conversion(target, amount_minor, "1", None, SAME)
    if currency not in ECB_CURRENCIES or target not in ECB_CURRENCIES:
        return Conversion(target, source=NONE)
    newest = newest or newest_day(conn)
    if newest is None:
        return Conversion(target)  # no rates yet
    provisional = False
    working_day = _last_working_day(local_day)
    if working_day > dt.date.fromisoformat(newest):
        # The rate of the expense's day is not published yet. Only today's may be stood in for, by
        # the previous working day's, and marked so until the day's own replaces it.
        if (local_day > today or working_day != _last_working_day(today)
                or _last_working_day(working_day - dt.timedelta(days=1)).isoformat() != newest):
            return Conversion(target)
        provisional = True
    day = conn.execute("SELECT max(day) FROM rates WHERE day <= ?", (local_day.isoformat(),)).fetchone()[0]
    if day is None:
        return Conversion(target, source=NONE)  # before the ECB's first day (1999-01-04)
    per_eur = dict(conn.execute("SELECT currency, per_eur FROM rates WHERE day = ? AND currency IN (?, ?)",
                                (day, currency, target)).fetchall())
    per_eur["EUR"] = "1"
    if currency not in per_eur or target not in per_eur:
        return Conversion(target, source=NONE)  # not published that day
    rate = Fraction(per_eur[target]) / Fraction(per_eur[currency])
    return Conversion(target, converted_minor(amount_minor, currency, target, rate), rate_text(rate), day,
                      PROVISIONAL if provisional else ECB)


def by_person(amount_minor: int, currency: str, target: str, rate: str, day: dt.date) -> Conversion:
    """An expense converted at the rate its person wrote ('@ 0.0062': units of target per one unit of
    currency), by the same rule as the ECB's: exact, rounded half to even once. Its day is the expense's."""
    return Conversion(target, converted_minor(amount_minor, currency, target, Fraction(rate)), rate,
                      day.isoformat(), PERSON)


def converted_minor(amount_minor: int, currency: str, target: str, rate: Fraction) -> int:
    """amount × rate in target's minor units, rounded half to even once, at the end."""
    return round(amount_minor * rate * Fraction(10) ** (minor_digits(target) - minor_digits(currency)))


def rate_text(rate: Fraction) -> str:
    """The rate as decimal text for people and the sqlite3 CLI: 10 significant digits (the sums use it exactly)."""
    text = f"{Decimal(rate.numerator) / Decimal(rate.denominator):.10g}"
    return format(Decimal(text), "f") if "e" in text.lower() else text


def _last_working_day(day: dt.date) -> dt.date:
    """The latest TARGET working day on or before day: the ECB publishes on those only."""
    while day.weekday() >= 5 or _is_target_holiday(day):
        day -= dt.timedelta(days=1)
    return day


def _is_target_holiday(day: dt.date) -> bool:
    """1 January, Good Friday, Easter Monday, 1 May, 25 and 26 December."""
    if (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return True
    easter = _easter(day.year)
    return day in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


def _easter(year: int) -> dt.date:
    """Easter Sunday in the Gregorian calendar (the anonymous algorithm, as in Meeus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (the algorithm's own name)
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)
