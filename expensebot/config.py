"""Configuration: one frozen Config, read from the environment once and validated."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path

from expensebot import money
from expensebot.settings import Settings

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v25.0"
DEFAULT_RATES_URL = "https://www.ecb.europa.eu/stats/eurofxref"
DEFAULT_RECEIPT_HOSTS = ("fbcdn.net", "fbsbx.com")  # Meta's CDNs, where Messenger's photo URLs point
MAX_AI_TIMEOUT = 3.0
REQUIRED_TO_SERVE = ("FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY")
# Shortest value accepted for each secret. PSID_HASH_KEY keys every person's identity for good:
# `openssl rand -hex 32` gives 64 characters. Meta's app secrets are 32 hex digits.
MIN_SECRET_LENGTH = {"FB_APP_SECRET": 8, "FB_VERIFY_TOKEN": 8, "PSID_HASH_KEY": 16, "OPS_TOKEN": 8,
                     "FB_PAGE_ACCESS_TOKEN": 8}
# Values in docs/OPERATIONS.md's example environment file that the operator must replace.
PLACEHOLDER = "replace-me"
# The example's other values: the domains reserved for documentation (RFC 2606), and its operator.
EXAMPLE_VALUES = re.compile(r"(?<![\w-])example\.(?:com|net|org)(?![\w-])|Jane Doe", re.IGNORECASE)
VARIABLES = ("EXPENSEBOT_DB", "EXPENSEBOT_HOST", "EXPENSEBOT_PORT", "EXPENSEBOT_SPOOL", "EXPENSEBOT_TZ",
             "EXPENSEBOT_CURRENCY", "FB_APP_SECRET", "FB_VERIFY_TOKEN", "FB_PAGE_ACCESS_TOKEN",
             "FB_GRAPH_URL", "PSID_HASH_KEY", "AI_ENABLED", "AI_URL", "AI_API_KEY", "AI_MODEL",
             "AI_TIMEOUT", "AI_RATE_PER_MINUTE", "OPS_TOKEN", "EXPENSEBOT_PUBLIC_URL",
             "EXPENSEBOT_OPERATOR", "EXPENSEBOT_CONTACT", "EXPENSEBOT_TRUSTED_PROXIES", "RATES_URL",
             "RECEIPT_HOSTS")


class ConfigError(ValueError):
    """Configuration values are missing or invalid; each problem names its variable or path."""

    def __init__(self, *problems: str):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class Config:
    db_path: Path = Path("expensebot.db")
    host: str = "127.0.0.1"
    port: int = 8080
    spool_dir: Path | None = None  # None: "<db file>.spool/"
    tz: str = "UTC"
    currency: str = "USD"
    fb_app_secret: str = ""
    fb_verify_token: str = ""
    fb_page_access_token: str = ""
    fb_graph_url: str = DEFAULT_GRAPH_URL
    psid_hash_key: str = ""
    ai_enabled: bool = False
    ai_url: str = ""
    ai_api_key: str = ""
    ai_model: str = ""
    ai_timeout: float = 2.5
    ai_rate_per_minute: int = 6
    ops_token: str = ""
    public_url: str = ""   # the public https:// base report links start with; "" = not set up
    operator: str = ""     # who runs the bot, shown on /privacy
    contact: str = ""      # how to reach them, shown on /privacy
    trusted_proxies: tuple[str, ...] = ()  # IP addresses whose X-Forwarded-For is believed
    rates_url: str = DEFAULT_RATES_URL  # where the ECB's rate files are; "off": never fetched
    # Where a receipt photo may be downloaded from: host names (https, subdomains too) or exact origins.
    receipt_hosts: tuple[str, ...] = DEFAULT_RECEIPT_HOSTS

    def __post_init__(self):
        object.__setattr__(self, "db_path", Path(self.db_path))
        object.__setattr__(self, "spool_dir", Path(self.spool_dir or f"{self.db_path}.spool"))

    @property
    def defaults(self) -> Settings:
        """The bot's own settings: a person's where theirs are unset or unusable."""
        return Settings(self.currency, self.tz)

    def __repr__(self) -> str:
        # Secrets must never reach a log line or a traceback through repr().
        secret = {"fb_app_secret", "fb_verify_token", "fb_page_access_token",
                  "psid_hash_key", "ai_api_key", "ops_token"}
        shown = (f"{f.name}={'***' if f.name in secret and getattr(self, f.name) else repr(getattr(self, f.name))}"
                 for f in dataclasses.fields(self))
        return f"Config({', '.join(shown)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Build a Config from environment variables, validating every value; raise ConfigError listing all problems."""
        config, problems = cls.read(env)
        if problems:
            raise ConfigError(*problems)
        return config

    @classmethod
    def read(cls, env: Mapping[str, str]) -> tuple[Config, list[str]]:
        """Build a Config from environment variables; return it with every problem found (defaults stand in)."""
        problems = _env_problems(env)
        get = env.get

        def parsed(parse, name: str, default: str, *args):
            # A value that does not parse is one problem; its default stands in so the rest is checked too.
            try:
                return parse(name, get(name) or default, *args)
            except ConfigError as exc:
                problems.extend(exc.problems)
                return parse(name, default, *args)

        config = cls(
            db_path=Path(get("EXPENSEBOT_DB") or "expensebot.db"),
            host=get("EXPENSEBOT_HOST") or "127.0.0.1",
            port=parsed(_port_of, "EXPENSEBOT_PORT", "8080"),
            spool_dir=get("EXPENSEBOT_SPOOL") or None,
            tz=get("EXPENSEBOT_TZ") or "UTC",
            currency=(get("EXPENSEBOT_CURRENCY") or "USD").upper(),
            fb_app_secret=get("FB_APP_SECRET", ""),
            fb_verify_token=get("FB_VERIFY_TOKEN", ""),
            fb_page_access_token=get("FB_PAGE_ACCESS_TOKEN", ""),
            fb_graph_url=(get("FB_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
            psid_hash_key=get("PSID_HASH_KEY", ""),
            ai_enabled=parsed(_boolean_of, "AI_ENABLED", "false"),
            ai_url=(get("AI_URL") or "").rstrip("/"),
            ai_api_key=get("AI_API_KEY", ""),
            ai_model=get("AI_MODEL", ""),
            ai_timeout=parsed(_number_of, "AI_TIMEOUT", "2.5", float),
            ai_rate_per_minute=parsed(_number_of, "AI_RATE_PER_MINUTE", "6", int),
            ops_token=get("OPS_TOKEN", ""),
            public_url=(get("EXPENSEBOT_PUBLIC_URL") or "").rstrip("/"),
            operator=get("EXPENSEBOT_OPERATOR", ""),
            contact=get("EXPENSEBOT_CONTACT", ""),
            rates_url=(get("RATES_URL") or DEFAULT_RATES_URL).rstrip("/"),
            receipt_hosts=tuple(part.strip().lower().rstrip("/") for part in get("RECEIPT_HOSTS", "").split(",")
                                if part.strip()) or DEFAULT_RECEIPT_HOSTS,
            trusted_proxies=tuple(part.strip() for part in get("EXPENSEBOT_TRUSTED_PROXIES", "").split(",")
                                  if part.strip()),
        )
        problems.extend(config.problems())
        return config, problems

    def problems(self) -> list[str]:
        """Every invalid value, one line each, naming its variable."""
        problems = []
        try:
            zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"EXPENSEBOT_TZ: unknown time zone {self.tz!r} (IANA name like Europe/Berlin)")
        if not money.is_currency(self.currency):
            problems.append(f"EXPENSEBOT_CURRENCY: {self.currency!r} is not an ISO 4217 code")
        if not 0 < self.ai_timeout <= MAX_AI_TIMEOUT:
            problems.append(f"AI_TIMEOUT: must be more than 0 and at most {MAX_AI_TIMEOUT:g} seconds")
        if self.ai_rate_per_minute < 1:
            problems.append("AI_RATE_PER_MINUTE: must be at least 1")
        if self.ai_enabled and not (self.ai_url and self.ai_model):
            problems.append("AI_URL and AI_MODEL: required when AI_ENABLED=true")
        for name, url in (("FB_GRAPH_URL", self.fb_graph_url), ("AI_URL", self.ai_url),
                          ("EXPENSEBOT_PUBLIC_URL", self.public_url),
                          ("RATES_URL", "" if self.rates_url == "off" else self.rates_url)):
            if url and not url.startswith(("http://", "https://")):
                problems.append(f"{name}: must start with http:// or https://"
                                + (" (or be off)" if name == "RATES_URL" else ""))
        if self.public_url.startswith(("http://", "https://")) and (problem := _public_url_problem(self.public_url)):
            problems.append(f"EXPENSEBOT_PUBLIC_URL: {problem}")
        if not_addresses := [value for value in self.trusted_proxies if not _is_ip_address(value)]:
            problems.append(f"EXPENSEBOT_TRUSTED_PROXIES: {', '.join(map(repr, not_addresses))} "
                            f"{'is not an IP address' if len(not_addresses) == 1 else 'are not IP addresses'}"
                            f" (comma-separated addresses of the reverse proxies in front, e.g. 127.0.0.1)")
        for host in self.receipt_hosts:
            if problem := _receipt_host_problem(host):
                problems.append(f"RECEIPT_HOSTS: {host!r} {problem}")
        return problems

    def serving_problems(self) -> list[str]:
        """What `serve` needs beyond valid values: the secrets, long enough, an https public URL, an IP to listen on."""
        problems = [f"{name}: required to serve (see docs/OPERATIONS.md, the environment file)"
                    for name in REQUIRED_TO_SERVE if not getattr(self, name.lower())]
        for name, shortest in MIN_SECRET_LENGTH.items():
            value = getattr(self, name.lower())
            if value and len(value) < shortest:
                problems.append(f"{name}: {len(value)} characters is too short for a secret; "
                                f"use at least {shortest} (openssl rand -hex 32)")
        if self.public_url.startswith("http://"):
            # The demo serves its report links over http on localhost; a real bot never does.
            problems.append("EXPENSEBOT_PUBLIC_URL: must start with https:// (people open these links)")
        for name, value in (("EXPENSEBOT_PUBLIC_URL", self.public_url), ("EXPENSEBOT_OPERATOR", self.operator),
                            ("EXPENSEBOT_CONTACT", self.contact)):
            if example := EXAMPLE_VALUES.search(value):
                problems.append(f"{name}: still the example's {example[0]!r}; "
                                f"put your own here (people see it)")
        if self.host != "localhost" and not _is_ip_address(self.host):
            problems.append(f"EXPENSEBOT_HOST: {self.host!r} is not an IP address")
        return problems

    def require_hash_key(self) -> None:
        """Raise ConfigError unless PSID_HASH_KEY is set and long enough to hash with."""
        shortest = MIN_SECRET_LENGTH["PSID_HASH_KEY"]
        if not self.psid_hash_key:
            raise ConfigError("PSID_HASH_KEY: required to hash a PSID")
        if len(self.psid_hash_key) < shortest:
            raise ConfigError(f"PSID_HASH_KEY: {len(self.psid_hash_key)} characters is too short; "
                              f"use at least {shortest} (openssl rand -hex 32)")


def _env_problems(env: Mapping[str, str]) -> list[str]:
    """Flag values that hold a comment or are still the documented example's placeholder.

    systemd keeps `KEY=value # note` whole (a shell would drop the comment), so such a value is
    almost certainly a mistake.
    """
    problems = []
    for name in VARIABLES:
        value = env.get(name, "")
        if " #" in value:
            problems.append(f"{name}: the value contains ' #'; in an environment file a comment must be on "
                            f"a line of its own (systemd keeps the rest of the line as part of the value)")
        if value.startswith(PLACEHOLDER):
            problems.append(f"{name}: still the example's placeholder {value!r}; put the real value here")
    return problems


def unknown_names(env: Mapping[str, str]) -> list[str]:
    """Names that look like ours but are none of ours: a typo leaves the default in place, silently."""
    problems = []
    for name in sorted(set(env) - set(VARIABLES)):
        if name.startswith(("EXPENSEBOT_", "FB_", "AI_")):
            closest = difflib.get_close_matches(name, VARIABLES, n=1, cutoff=0.6)
            hint = f"did you mean {closest[0]}?" if closest else "see docs/REFERENCE.md for the variables"
            problems.append(f"{name}: not a variable expensebot reads; {hint}")
    return problems


def _port_of(name: str, value: str) -> int:
    port = _number_of(name, value, int)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: must be between 0 and 65535")
    return port


def _number_of(name: str, value: str, kind: type):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a {'whole ' if kind is int else ''}number") from None


def _boolean_of(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}: {value!r} is not true or false")


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _receipt_host_problem(host: str) -> str | None:
    """Why an entry of RECEIPT_HOSTS is neither a host name nor an origin (scheme://host[:port]); None if it is one."""
    if "://" not in host:
        return None if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", host) else "is not a host name (like fbcdn.net)"
    parts = urllib.parse.urlsplit(host)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or not port_ok:
        return "is not an origin (like http://127.0.0.1:8099, no path)"
    return None


def _public_url_problem(url: str) -> str | None:
    """Why a report-link base would leak or break links, or None. A link is a bearer token."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return "needs a host"
    if "?" in url or "#" in url:
        return "must not have a query or fragment (links are appended to it)"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password"
    return None
