"""Read expenses out of chat text, one per line (SPEC §5): 'coffee 4.50', '€12 lunch #food'."""
import datetime
import re
from dataclasses import dataclass

from expensebot.money import (
    MAX_AMOUNT_MINOR, SYMBOLS, currency_for_symbol, is_currency, minor_digits,
)

MAX_EXPENSES_PER_MESSAGE = 50
MAX_LINE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 200

_NUMBER = re.compile(r"([0-9]+(?:[.,][0-9]+)*)(.*)", re.DOTALL)
_SEPARATOR = re.compile(r"[.,]")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TAG = re.compile(r"#([^\W_][\w-]{0,31})")
_TRAILING_PUNCTUATION = ".,;:!?"
_EDGE_PUNCTUATION = " -–—:=@,;"
_SIGNS = {"-": True, "−": True, "+": False}
_NUMBER_START = frozenset("0123456789+-−")
_MAX_WHOLE_DIGITS = len(str(MAX_AMOUNT_MINOR))
# Codes that are also everyday words ("pen 5", "top up 20") count only when written in capitals.
_CODES_THAT_ARE_WORDS = frozenset(
    "ALL BAM BOB CAD COP CUP GEL MAD MOP PEN RON RUB SOS TOP TRY".split()
)
# Control characters become spaces and lone surrogates U+FFFD, so every description
# can be stored as UTF-8 text.
_CLEAN = str.maketrans(
    {code: " " for code in [*range(0x20), *range(0x7F, 0xA0), 0x200B, 0x2060, 0xFEFF]}
    | {code: "\ufffd" for code in range(0xD800, 0xE000)}
)


@dataclass(frozen=True, slots=True)
class ParsedExpense:
    """One expense read from one line: integer minor units, the line's own date."""

    line: int
    amount_minor: int
    currency: str
    description: str
    category: str | None
    date: datetime.date


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A non-blank line that is not an expense, and why, in words a person understands."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a message holds: its expenses and the lines that are not expenses."""

    expenses: tuple[ParsedExpense, ...]
    rejected: tuple[RejectedLine, ...]


@dataclass(frozen=True, slots=True)
class _Money:
    """A word that reads as a number, with the currency written on it if any."""

    text: str
    negative: bool
    number: str
    thousands: bool
    currency: str | None


@dataclass(frozen=True, slots=True)
class _Currency:
    """A word that is only a currency: '$', 'EUR', 'php'."""

    text: str
    code: str


class _Rejected(Exception):
    """Stop reading a line that is not an expense."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_message(text: str, *, default_currency: str, today: datetime.date) -> ParseResult:
    """Read every non-blank line; lines past MAX_EXPENSES_PER_MESSAGE are rejected unread."""
    _check_currency(default_currency)
    expenses, rejected = [], []
    read = 0
    for index, line in enumerate(_split_lines(text)):
        if not line.translate(_CLEAN).strip():
            continue
        if read == MAX_EXPENSES_PER_MESSAGE:
            rejected.append(RejectedLine(index, "too many lines"))
            continue
        read += 1
        result = parse_line(line, default_currency=default_currency, today=today, index=index)
        (expenses if isinstance(result, ParsedExpense) else rejected).append(result)
    return ParseResult(tuple(expenses), tuple(rejected))


def parse_line(
    line: str, *, default_currency: str, today: datetime.date, index: int = 0
) -> ParsedExpense | RejectedLine:
    """Read one line as an expense, or say why it is not one.

    A description longer than MAX_DESCRIPTION_LENGTH is cut to that length; the
    expense is still read. Only lines over MAX_LINE_LENGTH are rejected for length.
    """
    _check_currency(default_currency)
    if len(line) > MAX_LINE_LENGTH:
        return RejectedLine(index, "line too long")
    try:
        return _read_expense(line, default_currency, today, index)
    except _Rejected as rejection:
        return RejectedLine(index, rejection.reason)


def _check_currency(code: str) -> None:
    """Refuse a default currency that is not an upper-case ISO 4217 code."""
    if not is_currency(code):
        raise ValueError(f"default_currency must be an ISO 4217 code, not {code!r}")


def _split_lines(text):
    """Split at LF, CRLF and CR only: str.splitlines() also splits at U+2028 and friends."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _read_expense(line, default_currency, today, index):
    """Turn one line into a ParsedExpense, raising _Rejected when it is not one."""
    category, words = _take_category(line.translate(_CLEAN).split())
    date, words = _take_date(words, today)
    tokens = [_classify(word, default_currency) for word in words]
    chosen, currency, used = _choose_amount(tokens, default_currency)
    return ParsedExpense(
        line=index,
        amount_minor=_amount_minor(tokens[chosen], currency),
        currency=currency,
        description=_describe(token for i, token in enumerate(tokens) if i not in used),
        category=category,
        date=date,
    )


def _take_category(words):
    """Return the first #tag, lower-cased, and the words without any tag."""
    category, kept = None, []
    for word in words:
        tag = _TAG.fullmatch(word.rstrip(_TRAILING_PUNCTUATION))
        if tag is None:
            kept.append(word)
        elif category is None:
            category = tag[1].lower()
    return category, kept


def _take_date(words, today):
    """Return the date the line names (today if none) and the words without it."""
    dates, kept = set(), []
    for word in words:
        date = _read_date(word.rstrip(_TRAILING_PUNCTUATION), today)
        if date is None:
            kept.append(word)
        else:
            dates.add(date)
    if len(dates) > 1:
        raise _Rejected("ambiguous date")
    return (dates.pop() if dates else today), kept


def _read_date(word, today):
    """Read 'today', 'yesterday' or YYYY-MM-DD; None when the word is no date."""
    lowered = word.lower()
    if lowered == "today":
        return today
    try:
        if lowered == "yesterday":
            return today - datetime.timedelta(days=1)
        match = _DATE.fullmatch(word)
        return match and datetime.date(*map(int, match.groups()))
    except (ValueError, OverflowError):
        raise _Rejected("invalid date") from None


def _classify(word, default_currency):
    """Return a _Currency, a _Money or the word itself."""
    bare = word.rstrip(_TRAILING_PUNCTUATION)
    code = _currency_code(bare, default_currency)
    if code is not None:
        return _Currency(word, code)
    return _read_money(word, bare, default_currency) or word


def _currency_code(text, default_currency):
    """Return the ISO code a symbol or a code stands for, or None."""
    if text in SYMBOLS:
        return currency_for_symbol(text, default_currency)
    code = text.upper()
    if not text.isascii() or not is_currency(code):
        return None
    if code in _CODES_THAT_ARE_WORDS and text != code:
        return None
    return code


def _read_money(word, bare, default_currency):
    """Read '-$1,200.50', '1.5k', '4.50usd' or '12€'; None when the word is no number."""
    negative, rest = _take_sign(bare)
    currency, rest = _take_prefix(rest, default_currency)
    if not negative:
        negative, rest = _take_sign(rest)
    match = _NUMBER.fullmatch(rest)
    if match is None:
        return None
    number, suffix = match.groups()
    thousands = suffix[:1] in ("k", "K") and _suffix_code(suffix, default_currency) is None
    if thousands:
        suffix = suffix[1:]
    suffix_code = _suffix_code(suffix, default_currency)
    if suffix and (suffix_code is None or currency is not None):
        return None
    return _Money(word, negative, number, thousands, currency or suffix_code)


def _suffix_code(suffix, default_currency):
    """Return the currency a non-empty suffix names, or None."""
    return _currency_code(suffix, default_currency) if suffix else None


def _take_sign(text):
    """Split a leading +, - or − off text; tell whether it was negative."""
    if text[:1] in _SIGNS:
        return _SIGNS[text[0]], text[1:]
    return False, text


def _take_prefix(text, default_currency):
    """Split a leading currency symbol or code ('$', 'US$', 'usd') off a number."""
    for symbol in SYMBOLS:
        if text.startswith(symbol):
            return currency_for_symbol(symbol, default_currency), text[len(symbol):]
    code = _currency_code(text[:3], default_currency)
    if code is not None and text[3:4] and text[3] in _NUMBER_START:
        return code, text[3:]
    return None, text


def _choose_amount(tokens, default_currency):
    """Return the index of the amount, its currency and the indexes it used up.

    A number next to a currency wins; else the only number; else a number that ends
    the line. Anything else is ambiguous: an amount is never guessed.
    """
    bindings = _bind_currencies(tokens)
    priced = _priced_numbers(tokens, bindings)
    if len(priced) > 1:
        raise _Rejected("ambiguous amount")
    if priced:
        [(chosen, currency)] = priced.items()
        return chosen, currency, {chosen, *(c for c, n in bindings.items() if n == chosen)}
    chosen = _only_or_last_number(tokens)
    currency, used = _floating_currency(tokens, default_currency)
    return chosen, currency, {chosen, *used}


def _bind_currencies(tokens):
    """Pair each standalone currency with the bare number beside it: 'PHP 250', '250 PHP'."""
    bindings = {}
    for i, token in enumerate(tokens):
        if not isinstance(token, _Currency):
            continue
        beside = [j for j in (i - 1, i + 1) if 0 <= j < len(tokens) and _is_bare(tokens[j])]
        if len(beside) > 1:
            raise _Rejected("ambiguous amount")
        if beside:
            bindings[i] = beside[0]
    return bindings


def _is_bare(token):
    """Tell whether token is a number that names no currency of its own."""
    return isinstance(token, _Money) and token.currency is None


def _priced_numbers(tokens, bindings):
    """Map the index of each number that has a currency to that currency."""
    priced = {i: t.currency for i, t in enumerate(tokens) if isinstance(t, _Money) and t.currency}
    for currency_index, number_index in bindings.items():
        code = tokens[currency_index].code
        if priced.setdefault(number_index, code) != code:
            raise _Rejected("ambiguous amount")
    return priced


def _only_or_last_number(tokens):
    """Return the index of the line's only number, or of the number that ends it."""
    numbers = [i for i, token in enumerate(tokens) if isinstance(token, _Money)]
    if not numbers:
        raise _Rejected("no amount")
    if len(numbers) == 1 or numbers[-1] == len(tokens) - 1:
        return numbers[-1]
    raise _Rejected("ambiguous amount")


def _floating_currency(tokens, default_currency):
    """Return the currency named away from the number ('PHP lunch 250') and its indexes."""
    named = {i: t.code for i, t in enumerate(tokens) if isinstance(t, _Currency)}
    codes = set(named.values())
    if len(codes) > 1:
        raise _Rejected("ambiguous currency")
    if codes:
        return codes.pop(), set(named)
    return default_currency, set()


def _amount_minor(money, currency):
    """Return the amount in minor units, exactly, or raise _Rejected."""
    if money.negative:
        raise _Rejected("amount must be positive")
    digits = minor_digits(currency)
    whole, fraction, grouped = _split_number(money.number, digits)
    if grouped and money.thousands:
        raise _Rejected("ambiguous amount")
    # Counted before int() so that a screenful of digits costs nothing.
    if len(whole.lstrip("0")) > _MAX_WHOLE_DIGITS:
        raise _Rejected("amount too large")
    scale_digits = 3 if money.thousands else 0
    if len(fraction) > digits + scale_digits:
        raise _Rejected("too many decimal places")
    exact = int(whole) * 10 ** len(fraction) + int(fraction or "0")
    amount = exact * 10 ** (digits + scale_digits) // 10 ** len(fraction)
    if amount == 0:
        raise _Rejected("amount must be positive")
    if amount > MAX_AMOUNT_MINOR:
        raise _Rejected("amount too large")
    return amount


def _split_number(number, digits):
    """Split '1,200.50' into whole digits, fraction digits and whether it had thousands groups.

    One separator before exactly three digits groups thousands ('1.200', '1,200'),
    unless the currency itself has three minor digits (KWD 1.250).
    """
    parts = _SEPARATOR.split(number)
    separators = _SEPARATOR.findall(number)
    if not separators:
        return number, "", False
    if len(separators) == 1 and (len(parts[1]) != 3 or digits == 3):
        return parts[0], parts[1], False
    if len(set(separators)) == 1:
        groups, fraction = parts, ""
    elif len(set(separators[:-1])) == 1:
        groups, fraction = parts[:-1], parts[-1]
    else:
        raise _Rejected("ambiguous amount")
    if not _is_grouped(groups):
        raise _Rejected("ambiguous amount")
    return "".join(groups), fraction, True


def _is_grouped(groups):
    """Tell whether digit groups read as thousands: '1', '234', '567'."""
    first, rest = groups[0], groups[1:]
    return len(first) <= 3 and first[0] != "0" and all(len(group) == 3 for group in rest)


def _describe(tokens):
    """Join what is left of the line into the description, without edge punctuation."""
    words = (token if isinstance(token, str) else token.text for token in tokens)
    description = " ".join(words).strip(_EDGE_PUNCTUATION)
    return description[:MAX_DESCRIPTION_LENGTH].rstrip()
