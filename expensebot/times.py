"""Timestamps as the database stores them: ISO-8601 UTC text with milliseconds."""

import datetime as dt
import time


def now_ms() -> int:
    """Return the wall clock in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def utc_now() -> dt.datetime:
    """Return the wall clock as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


def iso_utc(ms: int) -> str:
    """Format epoch milliseconds as 'YYYY-MM-DDTHH:MM:SS.mmmZ' (four-digit years, so it sorts as text)."""
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"


def iso_from_datetime(value: dt.datetime) -> str:
    """Format an aware datetime like iso_utc."""
    return iso_utc(int(value.timestamp()) * 1000 + value.microsecond // 1000)


def local_date(ms: int, zone: dt.tzinfo) -> dt.date:
    """Return the calendar date of epoch milliseconds in zone."""
    return dt.datetime.fromtimestamp(ms / 1000, zone).date()


def ms_from_iso(value: str) -> int:
    """Parse iso_utc's format back into epoch milliseconds."""
    moment = dt.datetime.fromisoformat(value)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000
