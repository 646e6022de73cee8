"""A person's own settings (currency, time zone), falling back to the bot's defaults."""

from __future__ import annotations

import dataclasses
import sqlite3
import zoneinfo

from expensebot import store


@dataclasses.dataclass(frozen=True)
class Settings:
    currency: str  # ISO 4217 code
    tz: str        # IANA zone name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)


def settings_of(conn: sqlite3.Connection, psid_hash: str, defaults: Settings) -> Settings:
    """The person's settings; what they never set comes from `defaults` (the environment's)."""
    row = store.person(conn, psid_hash)
    if row is None:
        return defaults
    return Settings(row["currency"] or defaults.currency, row["timezone"] or defaults.tz)
