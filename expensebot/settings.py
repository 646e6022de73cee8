"""A person's own settings (currency, time zone), falling back to the bot's defaults."""

from __future__ import annotations

import dataclasses
import zoneinfo

from expensebot import money


@dataclasses.dataclass(frozen=True)
class Settings:
    currency: str  # ISO 4217 code
    tz: str        # IANA zone name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)


def settings_from(currency: str | None, tz: str | None, defaults: Settings) -> Settings:
    """Settings from a people row's columns (None: never set)."""
    # Both were checked when set; a row changed by hand to something unknown falls back too.
    return Settings(currency if money.is_currency(currency or "") else defaults.currency,
                    tz if _is_zone(tz) else defaults.tz)


def _is_zone(name: str | None) -> bool:
    try:
        return bool(name) and zoneinfo.ZoneInfo(name) is not None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
