"""Read what a message means, knowing no database: expenses, a command, a question, or nothing.

Pure: the text, the person's Settings and the message's own time in, a Reading out. What each
command takes, and why a command is never an expense: docs/CHAT.md, Commands.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
import re
import zoneinfo

from expensebot import money, times
from expensebot.chat import parser, periods, recurring, rules
from expensebot.settings import Settings

DELETE_CONFIRM = "DELETE_MY_DATA_CONFIRM"
DELETE_CANCEL = "DELETE_MY_DATA_CANCEL"
# A receipt draft's quick replies: RECEIPT_SAVE:<draft id>, RECEIPT_FIX:..., RECEIPT_DROP:...
RECEIPT_BUTTON = re.compile(r"RECEIPT_(SAVE|FIX|DROP):([0-9]{1,18})")
# Postback payloads of the Get Started button and the persistent menu, as the command they are.
POSTBACKS = {"GET_STARTED": "welcome", "MENU_SUMMARY": "summary", "MENU_UNDO": "undo",
             "MENU_HELP": "help", "MENU_REPORT": "report"}
MAX_UNDO = 50  # as many as one message can hold (parser.MAX_EXPENSES_PER_MESSAGE)
DEFAULT_PERIOD = "month"
_PUNCTUATION = ".,;:!?"
_DASHES = "-–—"
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"))
_MONTHS = {calendar.month_name[number].lower(): number for number in range(1, 13)}
_MONTHS |= {calendar.month_abbr[number].lower(): number for number in range(1, 13)} | {"sept": 9}
_YEAR = re.compile(r"(19[7-9][0-9]|2[0-9]{3})")
_MONTH_OR_DAY = re.compile(_YEAR.pattern + r"-([0-9]{1,2})(?:-([0-9]{1,2}))?")  # '2026-11', '2026-11-20'
_CATEGORY = re.compile(r"#?([a-z][a-z0-9-]{0,31})")
_QUESTION_WORD = re.compile(r"[0-9]{4}-[0-9]{1,2}(?:-[0-9]{1,2})?|[^\W_][\w'-]*")
# Words a question may hold around what it asks: "how much (did I spend) on food (so far) this month".
_FILLER = frozenset({
    "did", "do", "does", "have", "has", "i", "i've", "ive", "we", "my", "me", "was", "is", "are", "the", "so",
    "far", "been", "spent", "spend", "spending", "total", "in", "during", "money", "all", "together",
    "altogether", "overall"})
_ANYTHING = frozenset({"everything", "anything", "all", "total", "stuff", "money", "things"})
_PER_MONTH = (["a", "month"], ["per", "month"], ["monthly"], ["each", "month"], ["every", "month"])
_CURRENCY_ADJECTIVES = {"us": "USD", "american": "USD", "canadian": "CAD", "australian": "AUD",
                        "singapore": "SGD", "hong": "HKD", "new": "NZD", "philippine": "PHP",
                        "mexican": "MXN", "indian": "INR", "pakistani": "PKR", "british": "GBP",
                        "japanese": "JPY", "chinese": "CNY", "swiss": "CHF", "swedish": "SEK",
                        "norwegian": "NOK", "danish": "DKK"}
# Common ways to name a zone that are not the last part of its IANA name. US abbreviations are the
# zones that keep daylight saving time: IANA's fixed 'EST' would be an hour off in New York all summer.
_ZONE_ALIASES = {alias: zone for zone, aliases in {
    "UTC": "utc", "Etc/GMT": "gmt", "America/New_York": "nyc, washington, boston, miami, est, edt",
    "America/Los_Angeles": "la, san francisco, sf, seattle, pst, pdt", "America/Chicago": "houston, dallas, cst, cdt",
    "America/Denver": "mdt", "Asia/Manila": "cebu, davao", "Asia/Shanghai": "beijing",
    "Asia/Kolkata": "delhi, new delhi, mumbai, bangalore", "Asia/Ho_Chi_Minh": "saigon, hanoi",
}.items() for alias in aliases.split(", ")}
_REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


# Every command a message can be; each has its reply (replies/compose.py).
COMMAND_NAMES = ("summary", "undo", "help", "delete_request", "delete_confirm", "delete_cancel", "welcome",
                 "report", "settings", "currency_set", "currency_ask", "timezone_set", "timezone_show",
                 "budget_set", "budget_off", "budgets", "question", "did_you_mean", "digest_on", "digest_off",
                 "recurring_set", "recurring_list", "recurring_stop",
                 "receipt_photo", "receipt_save", "receipt_fix", "receipt_drop")


@dataclasses.dataclass(frozen=True)
class Command:
    """A command (one of COMMAND_NAMES) with its arguments."""

    name: str
    period: periods.Period | None = None
    count: int = 1                       # undo: how many expenses
    currency: str | None = None          # currency_set; budget_set: the budget's currency
    tz: str | None = None                # timezone_set
    category: str | None = None          # budget_*: '' for everything; question: what is asked about
    amount_minor: int | None = None      # budget_set
    choices: tuple[str, ...] = ()        # currency_ask: the codes to offer
    topic: str = ""                      # did_you_mean: the command word that was meant
    rule: recurring.Rule | None = None   # recurring_set
    target: str = ""                     # recurring_stop: the rule's number in the list, or its name;
                                         # receipt_save/fix/drop: the draft's id


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a message's text says, read in the person's own currency and on their own date."""

    today: dt.date                       # the message's date in the person's zone
    settings: Settings
    command: Command | None = None
    parsed: parser.ParseResult | None = None

    @property
    def expenses(self) -> tuple:
        return self.parsed.expenses if self.parsed else ()

    @property
    def changes_settings(self) -> bool:
        """Whether this message sets the person's currency or time zone."""
        return self.command is not None and self.command.name in ("currency_set", "timezone_set")

    @property
    def settings_after(self) -> Settings:
        """The settings the person's next message is read with (this one may change them)."""
        if not self.changes_settings:
            return self.settings
        if self.command.name == "currency_set":
            return dataclasses.replace(self.settings, currency=self.command.currency)
        return dataclasses.replace(self.settings, tz=self.command.tz)


def read(text: str | None, settings: Settings, sent_ms: int, button: bool = False) -> Reading:
    """Read a message sent at sent_ms by a person with these settings.

    `button`: the text is a quick reply's or postback's payload, not typed. Only a button
    confirms an erasure: typed, DELETE_MY_DATA_CONFIRM is no command.
    """
    try:
        today = times.local_date(sent_ms, settings.zone)
    except (OverflowError, ValueError):  # the last hours of year 9999 in a zone ahead of UTC
        today = times.local_date(sent_ms, dt.UTC)
    if not text:
        return Reading(today, settings)
    # Pasted text may carry zero-width characters: '\u200bsummary 2026' is still a summary.
    words = text.translate(_INVISIBLE)
    try:
        command = (read_command(words, settings, today, button) or read_question(words, today)
                   or read_rule(words, settings, today))
    except (OverflowError, ValueError):  # a period that would end after year 9999
        command = Command("did_you_mean", topic="question" if not starts_with_command_word(words) else "summary")
    if command is not None:
        return Reading(today, settings, command)
    return Reading(today, settings, parsed=parser.parse_message(
        text, default_currency=settings.currency, today=today))


def starts_with_command_word(text: str) -> bool:
    """Tell whether the first word of text is a command word ('Summary: 2026' is)."""
    words = text.split(maxsplit=1)
    return bool(words) and words[0].lower().rstrip(_PUNCTUATION) in COMMAND_WORDS


def read_command(text: str, settings: Settings, today: dt.date, button: bool = False) -> Command | None:
    """The command a message is; None when its first word is no command word."""
    stripped = text.strip()
    if stripped in POSTBACKS:  # a menu item is its command typed without arguments
        name = POSTBACKS[stripped]
        return _COMMANDS[name]("", settings, today) if name in _COMMANDS else Command(name)
    if button and stripped in (DELETE_CONFIRM, DELETE_CANCEL):
        return Command("delete_confirm" if stripped == DELETE_CONFIRM else "delete_cancel")
    if button and (receipt := RECEIPT_BUTTON.fullmatch(stripped)):
        return Command(f"receipt_{receipt[1].lower()}", target=receipt[2])
    if stripped == "?":
        return Command("help")
    stripped = _without_verb(stripped)
    if stripped.lower().split()[:2] == ["time", "zone"]:
        return _timezone(" ".join(stripped.split()[2:]), settings, today)
    if not starts_with_command_word(stripped):
        return None
    first, *rest = stripped.split(maxsplit=1)
    word = first.lower().rstrip(_PUNCTUATION)
    arguments = rest[0].strip() if rest else ""
    if "\n" in arguments or "\r" in arguments:
        return Command("did_you_mean", topic=word)
    return _COMMANDS[word](arguments, settings, today) or Command("did_you_mean", topic=word)


def read_rule(text: str, settings: Settings, today: dt.date) -> Command | None:
    """A recurring expense ('rent 1200 monthly'); a did-you-mean when the line is shaped like one but
    cannot be; None for an ordinary line."""
    rule = recurring.read(text, settings.currency, today)
    if isinstance(rule, recurring.Refused):
        return Command("did_you_mean", topic=f"recurring_{rule.reason}")
    return Command("recurring_set", rule=rule) if rule else None


def _recurring(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    return Command("recurring_list") if not _words(arguments) else None


def _stop(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    """'stop rent', 'stop 2': the rule by its name or its number in the list of 'recurring'."""
    words = _words(arguments)
    return Command("recurring_stop", target=" ".join(words)) if words and len(words) <= 5 else None


def _without_verb(text: str) -> str:
    """'set currency EUR', 'change my timezone to X', 'my currency is PHP' without the words before the command."""
    words = text.split()
    n = 0
    while n < 2 and n < len(words) - 1 and words[n].lower() in ("set", "change", "update", "my"):
        n += 1
    if n and (words[n].lower().rstrip(_PUNCTUATION) in ("currency", "timezone", "tz", "budget")
              or [word.lower() for word in words[n:n + 2]] == ["time", "zone"]):
        return " ".join(words[n:])
    return text


def _without_to(arguments: str) -> str:
    """'to EUR', 'is Manila': the value without the joining word."""
    words = arguments.split()
    return " ".join(words[1:]) if len(words) > 1 and words[0].lower() in ("to", "is", "=") else arguments


def _words(arguments: str) -> list[str]:
    """The argument words in lower case, without edge punctuation or a lone dash ('summary — 2026')."""
    return [word.strip(_PUNCTUATION) for word in arguments.lower().split()
            if word.strip(_PUNCTUATION) and word.strip(_DASHES)]


def _summary(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    period = read_period(_words(arguments), today)
    return Command("summary", period) if period else None


def _undo(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    words = _words(arguments)
    if not words or words in (["that"], ["it"], ["last"], ["last", "one"], ["the", "last", "one"]):
        return Command("undo")
    if len(words) == 1 and words[0].isascii() and words[0].isdigit() and 1 <= int(words[0]) <= MAX_UNDO:
        return Command("undo", count=int(words[0]))
    return None


def _help(arguments: str, settings: Settings, today: dt.date) -> Command:
    return Command("help")


def _alone(name: str):
    """The reader of a command that takes no arguments: anything after its word is a did-you-mean."""
    return lambda arguments, settings, today: Command(name) if not arguments else None


def _delete(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    return Command("delete_request") if _words(arguments) == ["my", "data"] else None


def _currency(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    arguments = _without_to(arguments)
    if not arguments:
        return Command("currency_ask", choices=money.COMMON_CURRENCIES)
    codes = read_currency(arguments, settings.currency)
    if len(codes) == 1:
        return Command("currency_set", currency=codes[0])
    return Command("currency_ask", choices=codes) if codes else None


def _timezone(arguments: str, settings: Settings, today: dt.date) -> Command:
    if not arguments.strip():
        return Command("timezone_show")
    zone = read_zone(_without_to(arguments))
    return Command("timezone_set", tz=zone) if zone else Command("did_you_mean", topic="timezone")


def _budget(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    words = _without_month(arguments.lower().split())
    if not words:
        return Command("budgets")
    if words[-1].rstrip(_PUNCTUATION) == "off" and len(words) <= 2:
        category = _category(words[0].rstrip(_PUNCTUATION)) if len(words) == 2 else ""
        return Command("budget_off", category=category) if category is not None else None
    if len(words) > 3:
        return None
    amount = parser.parse_line(" ".join(["budget", *words]), default_currency=settings.currency, today=today)
    if not isinstance(amount, parser.ParsedExpense) or amount.currency != settings.currency:
        return None
    rest = amount.description.split()[1:]  # "budget" and the category, without the amount
    if amount.category:  # written as a tag: "budget #food 300"
        rest = [*rest, amount.category]
    if len(rest) > 1:
        return None
    category = _category(rest[0]) if rest else ""
    if category is None:
        return None
    return Command("budget_set", category=category, amount_minor=amount.amount_minor, currency=amount.currency)


def _without_month(words: list[str]) -> list[str]:
    """A budget's words without what every budget is ('a month', '/mo') and a 'for' before the category."""
    if words:
        words = [*words[:-1], words[-1].rstrip(_PUNCTUATION)]
        for ending in ("/month", "/mo"):
            if words[-1].endswith(ending) and len(words[-1]) > len(ending):
                words[-1] = words[-1][:-len(ending)]
    for ending in _PER_MONTH:
        if len(words) > len(ending) and words[-len(ending):] == ending:
            words = words[:-len(ending)]
            break
    return [word for word in words if word != "for"]


def _digest(arguments: str, settings: Settings, today: dt.date) -> Command | None:
    words = _words(arguments)
    return Command(f"digest_{words[0]}") if words in (["on"], ["off"]) else None


def _category(word: str) -> str | None:
    """The category a word names, '' for everything ('all', 'stuff'), None for no category."""
    word = word.lower()
    if word in _ANYTHING:
        return ""
    match = _CATEGORY.fullmatch(word)
    return match[1] if match and match[1] not in _ANYTHING else None


_COMMANDS = {"summary": _summary, "undo": _undo, "help": _help, "delete": _delete, "currency": _currency,
             "timezone": _timezone, "tz": _timezone, "budget": _budget, "budgets": _alone("budgets"),
             "settings": _alone("settings"), "report": _alone("report"), "digest": _digest,
             "recurring": _recurring, "stop": _stop}
COMMAND_WORDS = frozenset(_COMMANDS)  # a message whose first word is one of these is that command


def read_period(words: list[str], today: dt.date) -> periods.Period | None:
    """Read 'today', 'this week', 'last month', '2026', 'november', '2026-11', 'last 7 days', ...

    No words at all are DEFAULT_PERIOD; None when the words name no period.
    """
    if not words:
        return periods.named(DEFAULT_PERIOD, today)
    words = [word for word in words if word not in ("in", "for", "during", "of")]
    if words[:1] == ["this"] and len(words) == 2 and words[1] in ("week", "month", "year"):
        words = words[1:]
    if words in (["all"], ["all", "time"], ["ever"], ["alltime"]):
        return periods.named("all", today)
    if len(words) == 1 and words[0] in periods.NAMED:
        return periods.named(words[0], today)
    if words == ["yesterday"]:
        return periods.day(today - dt.timedelta(days=1), "Yesterday")
    if len(words) == 2 and words[0] in ("last", "previous") and words[1] in ("week", "month", "year"):
        return periods.previous(words[1], today)
    if len(words) == 3 and words[0] in ("last", "past") and words[2] in ("day", "days"):
        count = words[1]
        if count.isascii() and count.isdigit() and 1 <= int(count) <= periods.MAX_DAYS:
            return periods.last_days(int(count), today)
        return None
    if len(words) == 1:
        return _one_word_period(words[0], today)
    if len(words) == 2:
        month_word, year_word = words if words[0] in _MONTHS else words[::-1]
        if month_word in _MONTHS and _YEAR.fullmatch(year_word):
            return periods.month(int(year_word), _MONTHS[month_word])
    return None


def _one_word_period(word: str, today: dt.date) -> periods.Period | None:
    if _YEAR.fullmatch(word):
        return periods.year(int(word))
    if word in _MONTHS:
        month = _MONTHS[word]
        return periods.month(today.year if month <= today.month else today.year - 1, month)
    match = _MONTH_OR_DAY.fullmatch(word)
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        if day:
            return periods.day(dt.date(int(year), int(month), int(day)))
        return periods.month(int(year), int(month))
    except ValueError:  # '2026-13', '2026-02-30'
        return None


def read_question(text: str, today: dt.date) -> Command | None:
    """Read 'how much on food this month?', 'what did I spend yesterday?', 'coffee this year?'.

    A message that starts like a question but cannot be read is a did-you-mean, not an expense.
    """
    lowered = text.strip().lower()
    if len(lowered) > 120 or "\n" in lowered or not (lowered[:4] in ("how ", "what") or lowered[-1:] == "?"):
        return None  # the everyday expense line: no question, and no regex run on it
    words = _QUESTION_WORD.findall(lowered)
    asked = None
    if words[:2] == ["how", "much"]:
        asked = words[2:]
    elif words[:1] == ["what"] and len(words) >= 3 and set(words[1:4]) & {"spend", "spent"}:
        asked = words[1:]
    elif lowered.endswith("?"):
        return _term_question(words, today)
    if asked is None:
        return None
    return _question(asked, today) or Command("did_you_mean", topic="question")


def _question(words: list[str], today: dt.date) -> Command | None:
    words = [word for word in words if word not in _FILLER]
    category = None
    if words[:1] and words[0] in ("on", "for", "at"):
        if len(words) < 2:
            return None
        on_day = read_period(words[1:], today)  # 'what did I spend on 2026-11-20?'
        if on_day is not None:
            return Command("question", period=on_day)
        category = _category(words[1])
        words = words[2:]
        if category is None:
            return None
    period = read_period(words, today)
    if period is None and category is None and words:  # 'how much coffee this month?', 'how much food?'
        category = _category(words[0])
        period = read_period(words[1:], today)
    if period is None:
        return None
    return Command("question", period=period, category=category or None)


def _term_question(words: list[str], today: dt.date) -> Command | None:
    """'coffee this year?', 'food in november?': one word, then a period."""
    if len(words) < 2 or words[0] in COMMAND_WORDS:
        return None
    category = _category(words[0])
    period = read_period(words[1:], today)
    if not category or period is None:
        return None
    return Command("question", period=period, category=category)


def read_currency(text: str, own_currency: str) -> tuple[str, ...]:
    """The currencies 'EUR', '€', 'euros', 'us dollars' or 'pesos' may mean; () for none."""
    words = text.split()
    if [word.lower() for word in words] in (["pound", "sterling"], ["pounds", "sterling"]):
        return ("GBP",)
    if len(words) == 1:
        word = words[0].rstrip(_PUNCTUATION)
        if word.lower() in ("pound", "pounds") and own_currency not in money.POUND_CURRENCIES:
            return money.POUND_CURRENCIES  # asked for money by name: here 'pounds' is no weight
        if word.upper() in money.MINOR_DIGITS:
            return (word.upper(),)
        if word in money.SYMBOLS:
            return (money.currency_for_symbol(word, own_currency),)
        return money.currencies_for_word(word, own_currency)
    if len(words) == 2:
        code = _CURRENCY_ADJECTIVES.get(words[0].lower())
        if code and code in money.currencies_for_word(words[1].rstrip(_PUNCTUATION), code):
            return (code,)
    if len(words) == 3 and " ".join(words[:2]).lower() in ("hong kong", "new zealand"):
        return read_currency(f"{words[0]} {words[2]}", own_currency)
    return ()


def read_zone(text: str) -> str | None:
    """An IANA zone name for 'Asia/Manila', 'manila', 'new york' or 'UTC'; None when unknown."""
    key = " ".join(text.strip().lower().replace("_", " ").split()).rstrip(_PUNCTUATION)
    if not key or len(key) > 64:
        return None
    zone = _ZONE_ALIASES.get(key) or _zone_index().get(key)
    if zone is None and "," in key:  # 'Manila, Philippines', 'new york, ny'
        return read_zone(key.split(",", 1)[0])
    return zone


def _zone_index() -> dict[str, str]:
    """Every IANA name by its lower-case spelling, and by its city (the first name in order that has it)."""
    names = sorted(zoneinfo.available_timezones())
    index = {}
    for name in names:
        if name.split("/")[0] in _REGIONS:
            index.setdefault(name.rsplit("/", 1)[-1].replace("_", " ").lower(), name)
    return index | {name.lower().replace("_", " "): name for name in names}


# With AI on, a question the reader above cannot read may be mapped by the model to a query;
# the answer is only a category and a period, both checked here, and the totals come from SQL.
MODEL_PERIODS = ("today", "yesterday", "week", "month", "year", "all", "last week", "last month", "last year")
QUESTION_PROMPT = (
    "You turn a person's question about their own spending into a query. Answer with a JSON object "
    '{"category": <one of: ' + ", ".join(rules.CATEGORIES) + ', or null for all spending>, '
    '"period": <one of: ' + ", ".join(MODEL_PERIODS) + ">} and nothing else. "
    'If the text is not a question about spending, answer {"period": null}.'
)


def read_model_query(content: str, today: dt.date) -> Command | None:
    """The question a model's answer to QUESTION_PROMPT stands for; None unless it is exactly valid."""
    try:
        answer = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if not isinstance(answer, dict) or answer.get("period") not in MODEL_PERIODS:
        return None
    category = answer.get("category")
    if isinstance(category, str):
        category = category.strip().lower()
    if category is not None and category not in rules.CATEGORIES:
        return None
    return Command("question", period=read_period(answer["period"].split(), today), category=category)
