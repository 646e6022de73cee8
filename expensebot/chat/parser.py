"""Read expenses out of chat text: 'coffee 4.50', '€12 lunch #food', 'sushi 500 yen'.

One expense per line, or one per item-amount pair ('coffee 4.50 lunch 12'); a line that can't
be read with certainty is no expense, and says why. What a line may hold: docs/CHAT.md, Expenses.
"""
import datetime
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from expensebot.money import (
    MAX_AMOUNT_MINOR,
    RUPEE_SIGN,
    SYMBOLS,
    currencies_for_word,
    currency_for_symbol,
    is_currency,
    minor_digits,
)

MAX_EXPENSES_PER_MESSAGE = 50
MAX_LINE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 200
MIXED_CURRENCIES = "some amounts have a currency and some don't"
TOO_MANY = f"more than {MAX_EXPENSES_PER_MESSAGE} expenses in one message"
# Facebook started in 2004: a date written before that is a typo ('0999-01-01' would also sort
# after every real one as text).
EARLIEST_DATE = datetime.date(2004, 1, 1)
QUANTITY_ONLY = "a weight, volume or count is a quantity, not a price"
# A person's own rate, 'sushi 500 JPY @ 0.0062': what may be refused (docs/CHAT.md, A person's own rate).
RATE_OWN_CURRENCY = "a rate after @ is for an amount in another currency than yours"
MAX_RATE_DIGITS = 12
BAD_RATE = f"a rate must be a positive number with at most {MAX_RATE_DIGITS} significant digits and decimals"
RATE_ONE_EXPENSE = "a rate after @ goes on a line with one expense"
_RATE = re.compile(r"([0-9]+)(?:[.,]([0-9]+))?")
# Words after a number that make it a quantity: 'rice 2 kg 10' is 10.00 for 2 kg of rice.
_UNITS = frozenset({
    "kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "g", "gram", "grams", "lb", "lbs", "pound", "pounds",
    "oz", "ounce", "ounces", "l", "liter", "liters", "litre", "litres", "ml", "gal", "gallon", "gallons",
    "people", "persons", "pax", "guests", "night", "nights", "days", "hours", "hrs", "pcs", "pieces", "items",
})
# Words that join the pairs of a line ('lunch 12 and coffee 3') but are no item themselves
# ('coffee 3 x 2' is not an expense called 'x').
_JOINERS = frozenset(
    {"x", "×", "*", "@", "at", "each", "per", "and", "&", "+", "plus", "with", "of", "for", "=", "-"})
_LEADING_JOINERS = frozenset({"and", "&", "+", "plus"})
PER_ONE_OR_ALL = "I can't tell if the amount is for one or for all"
_MULTIPLIER = re.compile(r"[xX×*][0-9]+|[0-9]+[xX×]")
# Abbreviations read as a currency before a number too ('Rs 100', 'RM 10', 'kr 50').
_PREFIX_WORDS = frozenset({"rs", "rm", "kr"})

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
    {"ALL", "BAM", "BOB", "CAD", "COP", "CUP", "GEL", "MAD", "MOP", "PEN", "RON", "RUB", "SOS", "TOP", "TRY"})
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
    item: int = 0  # its place among the expenses of its line ('coffee 4.50 lunch 12' has two)
    # The person's own rate ('@ 0.0062'): units of their currency per one unit of `currency`, as
    # decimal text; None to convert at the ECB's.
    rate: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A non-blank line that is not an expense, and why, in words a person understands.

    `choices` is set when the line would be an expense in any of several currencies (a word
    like 'dollars'): each is (code, the line rewritten with that code), ready to be offered.
    """

    line: int
    reason: str
    choices: tuple[tuple[str, str], ...] = ()
    date: datetime.date | None = None  # with choices: the line's day, for a choice picked on a later one


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a message holds: its expenses and the lines that are not expenses."""

    expenses: tuple[ParsedExpense, ...]
    rejected: tuple[RejectedLine, ...]


class _Money(NamedTuple):
    """A word that reads as a number, with the currency written on it if any."""

    negative: bool
    number: str
    thousands: bool
    currency: str | None


# What a word of a line is: a number, the ISO code of a word that is only a currency
# ('$', 'EUR', 'php'), or None for any other word.
_Token = _Money | str | None


class _Rejected(Exception):
    """Stop reading a line that is not an expense; the arguments are its RejectedLine's after `line`."""


def parse_message(text: str, *, default_currency: str, today: datetime.date) -> ParseResult:
    """Read every non-blank line, up to MAX_EXPENSES_PER_MESSAGE expenses (and as many lines).

    A line that would take the message past that many expenses is rejected whole, and so is every
    line after it: a message holds at most what one `undo 50` takes back.
    """
    _check_currency(default_currency)
    expenses: list[ParsedExpense] = []
    rejected: list[RejectedLine] = []
    read = 0
    for index, line in enumerate(re.split(r"\r\n?|\n", text)):  # not str.splitlines(): no U+2028 and friends
        cleaned = line.translate(_CLEAN)
        if not cleaned.strip():
            continue
        if read == MAX_EXPENSES_PER_MESSAGE:
            rejected.append(RejectedLine(index, TOO_MANY))
            continue
        read += 1
        result = _parse_line(line, cleaned, default_currency, today, index)
        if type(result) is RejectedLine:
            rejected.append(result)
        elif len(expenses) + len(result) > MAX_EXPENSES_PER_MESSAGE:
            read = MAX_EXPENSES_PER_MESSAGE
            rejected.append(RejectedLine(index, TOO_MANY))
        else:
            expenses.extend(result)
    return ParseResult(tuple(expenses), tuple(rejected))


def parse_line(
    line: str, *, default_currency: str, today: datetime.date, index: int = 0
) -> ParsedExpense | RejectedLine | tuple[ParsedExpense, ...]:
    """Read one line as an expense, or say why it is not one; a tuple when it holds several.

    A description longer than MAX_DESCRIPTION_LENGTH is cut to that length; the
    expense is still read. Only lines over MAX_LINE_LENGTH are rejected for length.
    """
    _check_currency(default_currency)
    result = _parse_line(line, line.translate(_CLEAN), default_currency, today, index)
    return result[0] if type(result) is tuple and len(result) == 1 else result


def _parse_line(
    line: str, cleaned: str, default_currency: str, today: datetime.date, index: int
) -> tuple[ParsedExpense, ...] | RejectedLine:
    """parse_line for a line already cleaned and a default currency already checked."""
    if len(line) > MAX_LINE_LENGTH:
        return RejectedLine(index, "line too long")
    try:
        return _read_expense(cleaned, default_currency, today, index)
    except _Rejected as rejection:
        return RejectedLine(index, *rejection.args)


def _check_currency(code: str) -> None:
    """Refuse a default currency that is not an upper-case ISO 4217 code."""
    if not is_currency(code):
        raise ValueError(f"default_currency must be an ISO 4217 code, not {code!r}")


def _read_expense(
    text: str, default_currency: str, today: datetime.date, index: int
) -> tuple[ParsedExpense, ...]:
    """Turn one cleaned line into its expenses, raising _Rejected when it holds none.

    The first #tag names the category; of the dates, the first invalid one is the reason whatever follows.
    """
    # '₨100' is read as '₨ 100', the sign as the word 'rupees' (it names several).
    text = text.replace(RUPEE_SIGN, f" {RUPEE_SIGN} ")
    category: str | None = None
    dates: set[datetime.date] = set()
    words: list[str] = []
    bares: list[str] = []  # the words without their trailing punctuation
    tokens: list[_Token] = []
    numbers: list[int] = []
    for word in text.split():
        bare = word.rstrip(_TRAILING_PUNCTUATION)
        if bare[:1] == "#":
            tag = _TAG.fullmatch(bare)
            if tag is not None:
                if category is None:
                    category = tag[1].lower()
                continue
        date = _read_date(bare, today)
        if date is not None:
            dates.add(date)
            continue
        token = _currency_code(bare, default_currency) or _read_money(bare, default_currency)
        if type(token) is _Money:
            numbers.append(len(tokens))
        words.append(word)
        bares.append(bare)
        tokens.append(token)
    if len(dates) > 1:
        raise _Rejected("ambiguous date")
    date = dates.pop() if dates else today
    rate = None
    if numbers:
        _codes_in_place(bares, tokens)
        _read_currency_words(text, bares, tokens, default_currency, date)
        rate = _take_rate(words, bares, tokens, numbers, default_currency)
        _take_out_quantities(bares, tokens, numbers)
    segments = _segments(tokens)
    if len(segments) > 1 and any(all(tokens[i] is not None or bares[i].lower() in _JOINERS for i in segment)
                                 for segment in segments):
        raise _Rejected("several amounts")  # a pair without an item: 'coffee 3 x 2', 'coffee 2 at 3'
    expenses = []
    named = set()  # the currencies written on the line's pairs, and None for a pair with none
    for item, segment in enumerate(segments):
        part = [tokens[i] for i in segment]
        part_numbers = [n for n, token in enumerate(part) if type(token) is _Money]
        part_currencies = [n for n, token in enumerate(part) if type(token) is str]
        chosen, currency, used = _choose_amount(part, part_numbers, part_currencies, default_currency)
        after = segment.start + chosen + 1
        if after < len(bares) and _MULTIPLIER.fullmatch(bares[after]):
            raise _Rejected(PER_ONE_OR_ALL)  # 'coffee 3 x2': 3 each, or 3 for both?
        named.add(currency if part_currencies or part[chosen].currency else None)
        description = _describe([words[i] for i in segment], used)
        if item:  # 'lunch 12 and coffee 3': the second is 'coffee'
            first, _, rest = description.partition(" ")
            description = rest if first.lower() in _LEADING_JOINERS and rest else description
        amount_minor = _amount_minor(part[chosen], currency)
        expenses.append(ParsedExpense(index, amount_minor, currency, description, category, date, item))
    if None in named and named - {None, default_currency}:
        # 'lunch 12 EUR tip 2': the tip in the default currency would be a guess.
        raise _Rejected(MIXED_CURRENCIES)
    if rate is not None:
        return (_with_rate(expenses, rate, default_currency),)
    return tuple(expenses)


def _take_rate(words: list[str], bares: list[str], tokens: list[_Token], numbers: list[int],
               default_currency: str) -> str | None:
    """Take a person's own rate off the end of a line, '<amount> <CURRENCY> @ <rate>'; its text, or None.

    Only that shape: the amount with its currency right before the '@' ('500 JPY', '500 yen', '¥500')
    and the rate last (a date or #category may follow, they are read apart). Any other '@' stays a
    word, so 'coffee 2 @ 3' is still a line that can't be split with certainty.
    """
    if len(tokens) >= 2 and bares[-1][:1] == "@" and bares[-1][1:2].isdigit():  # '@0.0062'
        rate_word, before = bares[-1][1:], len(tokens) - 2
    elif len(tokens) >= 3 and bares[-2] == "@":
        rate_word, before = bares[-1], len(tokens) - 3
    else:
        return None
    if rate_word[:1] not in _NUMBER_START and rate_word[:1] not in ".,":
        return None  # 'lunch 20 EUR @ home': a place, not a rate
    priced = tokens[before]
    if type(priced) is str:  # '500 JPY @': the code must be the amount's, right after it
        if before == 0 or not _is_bare(tokens[before - 1]):
            return None
    elif type(priced) is not _Money or priced.currency is None:
        return None  # 'coffee 2 @ 3': no currency named before the '@'
    currency = priced if type(priced) is str else priced.currency
    if currency == default_currency:
        raise _Rejected(RATE_OWN_CURRENCY)
    rate = _read_rate(rate_word)
    cut = before + 1
    for part in (words, bares, tokens):
        del part[cut:]
    numbers[:] = [i for i in numbers if i < cut]
    return rate


def _read_rate(word: str) -> str:
    """A rate as decimal text ('0,0062' is '0.0062'), or raise _Rejected: positive, with at most
    MAX_RATE_DIGITS significant digits and as many decimals."""
    match = _RATE.fullmatch(word)
    if match is None:
        raise _Rejected(BAD_RATE)
    whole, fraction = match[1], match[2] or ""
    rate = Decimal(f"{whole}.{fraction}" if fraction else whole)
    significant = (whole + fraction).lstrip("0")
    if rate <= 0 or len(significant) > MAX_RATE_DIGITS or len(fraction) > MAX_RATE_DIGITS:
        raise _Rejected(BAD_RATE)
    return format(rate, "f")


def _with_rate(expenses: list[ParsedExpense], rate: str, default_currency: str) -> ParsedExpense:
    """The line's one expense with the person's rate; refused when the line holds several or it would be too large."""
    if len(expenses) != 1:
        raise _Rejected(RATE_ONE_EXPENSE)
    [expense] = expenses
    scale = Fraction(10) ** (minor_digits(default_currency) - minor_digits(expense.currency))
    if expense.amount_minor * Fraction(rate) * scale > MAX_AMOUNT_MINOR:
        raise _Rejected("amount too large")
    return replace(expense, rate=rate)


def _codes_in_place(bares: list[str], tokens: list[_Token]) -> None:
    """Make a lower-case code a word unless it is right after a number, or first and right before one.

    Signs and codes in capitals stay currencies wherever they stand.
    """
    for i, token in enumerate(tokens):
        if type(token) is not str or bares[i] == token or bares[i] in SYMBOLS:
            continue
        if not ((i > 0 and type(tokens[i - 1]) is _Money) or (i == 0 and type(tokens[1]) is _Money)):
            tokens[i] = None  # 'car svc 40': a service, not Salvadoran colones


def _take_out_quantities(bares: list[str], tokens: list[_Token], numbers: list[int]) -> None:
    """Make a bare number right before a unit ('2 kg', '5 pounds') a word: how much, not what it cost.

    A line whose every number is a quantity has no price to read.
    """
    quantities = {i for i in numbers if i + 1 < len(tokens) and tokens[i + 1] is None and _is_bare(tokens[i])
                  and bares[i + 1].lower() in _UNITS}
    if not quantities:
        return
    if len(quantities) == len(numbers):
        raise _Rejected(QUANTITY_ONLY)
    left = [i for i in numbers if i not in quantities]
    if len(left) == 1 and left[0] < len(tokens) - 1 and tokens[left[0]].currency is None and not any(
            type(tokens[j]) is str for j in (left[0] - 1, left[0] + 1) if 0 <= j < len(tokens)):
        raise _Rejected("ambiguous amount")  # '2 coffees 10 people': the price must end the line or name a currency
    for i in quantities:
        tokens[i] = None


def _read_currency_words(
    text: str, bares: list[str], tokens: list[_Token], default_currency: str, date: datetime.date
) -> None:
    """Read currency names written right after a bare number ('500 yen', '100 pesos') as codes.

    A name of several currencies, none the person's own, stops the line with the choices. The rupee
    sign is such a name wherever it stands, as any sign is.
    """
    for i, word in enumerate(bares):
        if tokens[i] is not None:
            continue
        if (word != RUPEE_SIGN and not (i > 0 and _is_bare(tokens[i - 1]))
                and not _is_prefix(bares, tokens, i, default_currency)):
            continue
        codes = currencies_for_word(word, default_currency)
        if len(codes) == 1 or default_currency in codes:
            tokens[i] = codes[0] if len(codes) == 1 else default_currency
        elif codes:
            raise _Rejected("which currency", tuple((code, _rewrite(text, word, code)) for code in codes[:6]), date)


def _is_prefix(bares: list[str], tokens: list[_Token], i: int, default_currency: str) -> bool:
    """Tell whether bares[i] is an abbreviation ('Rs', 'RM', 'kr') before a number with no currency after it."""
    if bares[i].lower() not in _PREFIX_WORDS or i + 1 >= len(tokens) or not _is_bare(tokens[i + 1]):
        return False
    if i + 2 < len(tokens):  # 'rm 10 AED', 'rs 100 euros': the currency after the number wins
        return tokens[i + 2] is None and not currencies_for_word(bares[i + 2], default_currency)
    return True


def _rewrite(text: str, word: str, code: str) -> str:
    """The line with its first word `word` (after a number) replaced by a currency code."""
    parts = text.split()
    first = [part.rstrip(_TRAILING_PUNCTUATION) for part in parts].index(word)
    return " ".join([*parts[:first], code, *parts[first + 1:]])


def with_date(line: str, date: datetime.date) -> str:
    """The line with its day written out: 'today' and 'yesterday' as YYYY-MM-DD, or the date added.

    What a quick reply sends, so that a choice picked after midnight keeps the day of the line.
    """
    parts = line.split()
    dated = False
    for i, part in enumerate(parts):
        bare = part.rstrip(_TRAILING_PUNCTUATION)
        if bare.lower() in ("today", "yesterday"):
            parts[i] = date.isoformat()
            dated = True
        dated = dated or _DATE.fullmatch(bare) is not None
    written = " ".join(parts if dated else [*parts, date.isoformat()])
    return written if len(written) <= MAX_LINE_LENGTH else line  # a line near the limit keeps its words


def _segments(tokens: list[_Token]) -> list[range]:
    """Split a line into its item-amount pairs: 'coffee 4.50 lunch 12' has two, most lines one.

    What a pair is, and when a line cannot be split with certainty: docs/CHAT.md (several amounts).
    """
    segments: list[range] = []
    start, has_word = 0, False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token is None:
            has_word = True
        elif type(token) is _Money and has_word:
            if i + 1 < len(tokens) and type(tokens[i + 1]) is str:
                i += 1
            segments.append(range(start, i + 1))
            start, has_word = i + 1, False
        i += 1
    if not segments:
        return [range(len(tokens))]
    if any(type(token) is _Money for token in tokens[start:]):
        raise _Rejected("several amounts")
    segments[-1] = range(segments[-1].start, len(tokens))
    return segments


def _read_date(word: str, today: datetime.date) -> datetime.date | None:
    """Read 'today', 'yesterday' or YYYY-MM-DD; None when the word is no date."""
    lowered = word.lower()
    if lowered == "today":
        return today
    if lowered == "yesterday":
        try:
            return today - datetime.timedelta(days=1)
        except OverflowError:
            raise _Rejected("invalid date") from None
    match = _DATE.fullmatch(word)
    if match is None:
        return None
    try:
        date = datetime.date(*map(int, match.groups()))
    except ValueError:
        raise _Rejected("invalid date") from None
    if date < EARLIEST_DATE:
        raise _Rejected("date out of range")
    return date


def _currency_code(text: str, default_currency: str) -> str | None:
    """Return the ISO code a symbol or a code stands for (a code in any case, except the codes that
    are also words: in capitals only), or None."""
    if text in SYMBOLS:
        return currency_for_symbol(text, default_currency)
    code = text.upper()
    if not text.isascii() or not is_currency(code):
        return None
    return code if text == code or code not in _CODES_THAT_ARE_WORDS else None


def _read_money(bare: str, default_currency: str) -> _Money | None:
    """Read '-$1,200.50', '1.5k', '4.50usd' or '12€'; None when the word is no number."""
    negative, rest = _take_sign(bare)
    currency, rest = _take_prefix(rest, default_currency)
    if not negative:
        negative, rest = _take_sign(rest)
    match = _NUMBER.fullmatch(rest)
    if match is None:
        return None
    number, suffix = match.groups()
    thousands = suffix[:1] in ("k", "K") and _currency_code(suffix, default_currency) is None
    if thousands:
        suffix = suffix[1:]
    suffix_code = _currency_code(suffix, default_currency)
    if suffix and (suffix_code is None or currency is not None):
        return None
    return _Money(negative, number, thousands, currency or suffix_code)


def _take_sign(text: str) -> tuple[bool, str]:
    """Split a leading +, - or − off text; tell whether it was negative."""
    if text[:1] in _SIGNS:
        return _SIGNS[text[:1]], text[1:]
    return False, text


def _take_prefix(text: str, default_currency: str) -> tuple[str | None, str]:
    """Split a leading currency symbol or code ('$', 'US$', 'usd') off a number."""
    for symbol in SYMBOLS:  # longest first: 'US$5' is US$, not U and S$
        if text.startswith(symbol):
            return currency_for_symbol(symbol, default_currency), text[len(symbol):]
    if text[3:4] in _NUMBER_START:
        code = _currency_code(text[:3], default_currency)
        if code is not None:
            return code, text[3:]
    return None, text


def _choose_amount(
    tokens: list[_Token], numbers: list[int], currencies: list[int], default_currency: str
) -> tuple[int, str, set[int]]:
    """Return the index of the amount, its currency and the indexes it used up.

    A number next to a currency wins; else the only number; else a number that ends
    the line. Anything else is ambiguous: an amount is never guessed.
    """
    priced = {i: tokens[i].currency for i in numbers if tokens[i].currency}
    bound = set()  # the codes that gave a bare number beside them theirs ('PHP 250', '250 PHP')
    for i in currencies:
        beside = [j for j in (i - 1, i + 1) if 0 <= j < len(tokens) and _is_bare(tokens[j])]
        if len(beside) > 1:
            raise _Rejected("ambiguous amount")
        if beside:
            bound.add(i)
            if priced.setdefault(beside[0], tokens[i]) != tokens[i]:
                raise _Rejected("ambiguous amount")
    if len(priced) > 1:
        raise _Rejected("ambiguous amount")
    if priced:
        [(chosen, currency)] = priced.items()
        return chosen, currency, {chosen, *bound}
    if not numbers:
        raise _Rejected("no amount")
    if len(numbers) > 1 and numbers[-1] != len(tokens) - 1:
        raise _Rejected("ambiguous amount")
    codes = {tokens[i] for i in currencies}  # named away from the number: 'PHP lunch 250'
    if len(codes) > 1:
        raise _Rejected("ambiguous currency")
    return numbers[-1], codes.pop() if codes else default_currency, {numbers[-1], *currencies}


def _is_bare(token: _Token) -> bool:
    """Tell whether token is a number that names no currency of its own."""
    return type(token) is _Money and token.currency is None


def _amount_minor(money: _Money, currency: str) -> int:
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
    amount = int(whole + fraction) * 10 ** (digits + scale_digits - len(fraction))
    if amount == 0:
        raise _Rejected("amount must be positive")
    if amount > MAX_AMOUNT_MINOR:
        raise _Rejected("amount too large")
    return amount


def _split_number(number: str, digits: int) -> tuple[str, str, bool]:
    """Split '1,200.50' into whole digits, fraction digits and whether it had thousands groups.

    One separator before exactly three digits groups thousands ('1.200', '1,200'),
    unless the currency itself has three minor digits (KWD 1.250).
    """
    separators = _SEPARATOR.findall(number)
    if not separators:
        return number, "", False
    if len(separators) == 1:
        whole, _, fraction = number.partition(separators[0])
        if len(fraction) != 3 or digits == 3:
            return whole, fraction, False
    parts = _SEPARATOR.split(number)
    if len(set(separators)) == 1:
        groups, fraction = parts, ""
    elif len(set(separators[:-1])) == 1:
        groups, fraction = parts[:-1], parts[-1]
    else:
        raise _Rejected("ambiguous amount")
    if len(groups[0]) > 3 or groups[0][0] == "0" or any(len(group) != 3 for group in groups[1:]):
        raise _Rejected("ambiguous amount")  # no thousands groups: '12,34.50', '0.500.000'
    return "".join(groups), fraction, True


def _describe(words: list[str], used: set[int]) -> str:
    """Join the words the amount did not use into the description, without edge punctuation."""
    description = " ".join([word for i, word in enumerate(words) if i not in used]).strip(_EDGE_PUNCTUATION)
    return description[:MAX_DESCRIPTION_LENGTH].rstrip()
