"""What the read routes share: a database that cannot be read is a 503, never a 500."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable

import bottle

from expensebot.errors import DatabaseUnavailable, describe
from expensebot.logs import log_event

logger = logging.getLogger(__name__)


def database_required(route: Callable) -> Callable:
    """Answer 503 when the route finds the database unreadable: the app's error page, JSON or plain."""
    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except (sqlite3.Error, DatabaseUnavailable) as exc:
            # The route's pattern, not the path: a report link's path holds its bearer token.
            log_event(logger, "database_read_failed", level=logging.WARNING, route=bottle.request.route.rule,
                      reason=describe(exc))
            raise bottle.HTTPError(503, "database unavailable") from None
    return wrapper
