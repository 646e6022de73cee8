"""Whether a model's rephrasing of a computed summary says only what the summary says.

The model words things, it never counts: every total is summed from the expenses rows, and a
rephrasing that states anything the plain summary does not is discarded (the plain one is sent).
"""

from __future__ import annotations

import re
from decimal import Decimal

from expensebot import money
from expensebot.chat.rules import CATEGORIES

MAX_REPHRASING_CHARS = 2000

# A number as people write amounts: 1,200.50 or 1200.5 or -3, then an optional percent sign or word.
_NUMBER = re.compile(
    r"(?P<sign>(?<!\w)[-−])?(?P<whole>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<fraction>\.\d+)?"
    r"(?P<percent>\s?(?:%|percent\b|per\s?cent\b))?",
    re.IGNORECASE)
_NUMBER_WORDS = frozenset(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion dozen half quarter twice double triple".split())
_WORD = re.compile(r"[^\W\d_]+")


# Words that name a period or a category: a rephrasing may only use those the summary uses.
_PERIOD_WORDS = frozenset(
    "today yesterday tomorrow tonight week weekly weekend fortnight month monthly year yearly annual annually "
    "daily quarterly".split())
_MEANING_WORDS = _NUMBER_WORDS | _PERIOD_WORDS | frozenset(CATEGORIES) | {"uncategorized"}
# Money named in words, and the codes each may stand for.
_CURRENCY_WORDS = {
    "dollar": money.DOLLAR_CURRENCIES, "dollars": money.DOLLAR_CURRENCIES, "buck": {"USD"}, "bucks": {"USD"},
    "euro": {"EUR"}, "euros": {"EUR"}, "pound": {"GBP"}, "pounds": {"GBP"}, "yen": {"JPY", "CNY"},
    "yuan": {"CNY"}, "peso": {"PHP", "MXN", "ARS", "CLP", "COP", "CUP", "DOP", "UYU"},
    "pesos": {"PHP", "MXN", "ARS", "CLP", "COP", "CUP", "DOP", "UYU"}, "rupee": {"INR"}, "rupees": {"INR"},
    "won": {"KRW"}, "baht": {"THB"}, "ringgit": {"MYR"}, "rand": {"ZAR"}, "franc": {"CHF"}, "francs": {"CHF"},
}
_SYMBOL = re.compile("|".join(re.escape(symbol) for symbol in money.SYMBOLS))


def rephrasing_is_faithful(plain: str, rephrased: str) -> bool:
    """True when the rephrasing states nothing the plain summary does not: numbers, money, periods, categories.

    Numbers compare by value: "1,200.50" == "1200.50" and "100" == "100.00" (the same amount, written
    with or without cents). A percentage is a different number from the same amount ("25%" is not
    "25.00"), and a minus sign counts. Spelled-out numbers ("twelve", "hundred", "half", "twice")
    must appear as words in the plain summary; "one" is left alone, it is mostly a pronoun.
    Every currency the rephrasing names (a code, a symbol, a word such as "euros") must be one the
    summary names ("$" may stand for a summary's USD); period words ("week", "month") and category
    names must be words of the summary.
    """
    if not plain.strip() or not rephrased.strip() or len(rephrased) > MAX_REPHRASING_CHARS:
        return False
    plain_words = set(_WORD.findall(plain.casefold()))
    stated_words = {w for w in _WORD.findall(rephrased.casefold()) if w in _MEANING_WORDS}
    return (_numbers(rephrased) <= _numbers(plain) and stated_words <= plain_words
            and _currencies_agree(plain, rephrased))


def _currencies_agree(plain: str, rephrased: str) -> bool:
    """Every currency the rephrasing names could be one the plain summary names."""
    named = _currency_codes(plain)
    for symbol in _SYMBOL.findall(rephrased):
        if symbol == "$":
            if not named & money.DOLLAR_CURRENCIES:
                return False
        elif symbol in ("¥", "￥"):
            if not named & {"JPY", "CNY"}:
                return False
        elif money.currency_for_symbol(symbol, "") not in named:
            return False
    stated = {word for word in _WORD.findall(rephrased.casefold()) if word in _CURRENCY_WORDS}
    return _currency_codes(rephrased) <= named and all(_CURRENCY_WORDS[word] & named for word in stated)


def _currency_codes(text: str) -> set[str]:
    """The ISO 4217 codes written in text, in capitals as format_amount writes them."""
    return {word for word in re.findall(r"\b[A-Z]{3}\b", text) if money.is_currency(word)}


def _numbers(text: str) -> set[tuple[bool, Decimal]]:
    """(is a percentage, value) of every number in the text."""
    numbers = set()
    for match in _NUMBER.finditer(text):
        value = Decimal(match["whole"].replace(",", "") + (match["fraction"] or ""))
        numbers.add((match["percent"] is not None, -value if match["sign"] else value))
    return numbers
