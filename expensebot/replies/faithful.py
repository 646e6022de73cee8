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
    r"(?P<percent>\s?(?i:%|percent\b|per\s?cent\b))?")
# Numbers written as words count too; "one" is left out: it is mostly a pronoun.
_NUMBER_WORDS = frozenset(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion dozen half quarter twice double triple".split())
_WORD = re.compile(r"[^\W\d_]+")


# Words that name a period or a category: a rephrasing may only use those the summary uses.
# "last month" for "This month" is another period, so the words that move a period count too.
# "may" is left out of the months: it is mostly a verb.
_PERIOD_WORDS = frozenset(
    "today yesterday tomorrow tonight week weeks weekly weekend fortnight month months monthly year years "
    "yearly annual annually daily quarterly last next previous past ago prior preceding upcoming "
    "january february march april june july august september october november december".split())
_CATEGORY_WORDS = frozenset(CATEGORIES) | {"uncategorized"}
_MEANING_WORDS = _NUMBER_WORDS | _PERIOD_WORDS | _CATEGORY_WORDS
# "this month" where the summary says "Last month": the period words agree, the period does not.
_THIS_PERIOD = re.compile(r"\b(?:this|current)\s+(?:week|month|year)\b", re.IGNORECASE)
# Money named in words, and the codes each may stand for; the first ones in the plural too.
_CURRENCY_WORDS = {"dollar": money.DOLLAR_CURRENCIES, "buck": {"USD"}, "euro": {"EUR"}, "pound": {"GBP"},
                   "peso": {"PHP", "MXN", "ARS", "CLP", "COP", "CUP", "DOP", "UYU"}, "rupee": {"INR"}, "franc": {"CHF"}}
_CURRENCY_WORDS |= {word + "s": codes for word, codes in _CURRENCY_WORDS.items()}
_CURRENCY_WORDS |= {"yen": {"JPY", "CNY"}, "yuan": {"CNY"}, "won": {"KRW"}, "baht": {"THB"}, "ringgit": {"MYR"},
                    "rand": {"ZAR"}}
_SYMBOL = re.compile("|".join(re.escape(symbol) for symbol in (*money.SYMBOLS, money.RUPEE_SIGN)))
# The pieces a category and its amount are read from: a clause ends at these marks and words.
_PIECE = re.compile(rf"(?P<number>{_NUMBER.pattern})|(?P<symbol>{_SYMBOL.pattern})|(?P<word>{_WORD.pattern})"
                    r"|(?P<stop>[.,;!?\n])")
_CLAUSE_WORDS = frozenset("and but while whereas plus then".split())
# At most this many words between a category and its amount: "food came to 18.50 EUR",
# "18.50 EUR went on food", "food led this month at 18.50 EUR".
_BESIDE = 4


def rephrasing_is_faithful(plain: str, rephrased: str) -> bool:
    """True when the rephrasing states nothing the plain summary does not (the rules: docs/CHAT.md)."""
    if not plain.strip() or not rephrased.strip() or len(rephrased) > MAX_REPHRASING_CHARS:
        return False
    plain_words = set(_WORD.findall(plain.casefold()))
    stated_words = {w for w in _WORD.findall(rephrased.casefold()) if w in _MEANING_WORDS}
    return (_numbers(rephrased) <= _numbers(plain) and stated_words <= plain_words
            and ("this" in plain_words or not _THIS_PERIOD.search(rephrased))
            and _currencies_agree(plain, rephrased)
            and _category_amounts(rephrased) <= _category_amounts(plain))


def _currencies_agree(plain: str, rephrased: str) -> bool:
    """Every currency the rephrasing names could be one the plain summary names."""
    named = _currency_codes(plain)
    if any(named.isdisjoint(money.currencies_for_symbol(symbol)) for symbol in _SYMBOL.findall(rephrased)):
        return False
    stated = {word for word in _WORD.findall(rephrased.casefold()) if word in _CURRENCY_WORDS}
    return _currency_codes(rephrased) <= named and all(_CURRENCY_WORDS[word] & named for word in stated)


def _currency_codes(text: str) -> set[str]:
    """The ISO 4217 codes written in text, in capitals as format_amount writes them."""
    return {word for word in re.findall(r"\b[A-Z]{3}\b", text) if money.is_currency(word)}


def _numbers(text: str) -> set[tuple[bool, Decimal]]:
    """(is a percentage, value) of every number in the text."""
    return {(match["percent"] is not None, _value(match)) for match in _NUMBER.finditer(text)}


def _value(match: re.Match) -> Decimal:
    """The signed value of a matched number."""
    value = Decimal(match["whole"].replace(",", "") + (match["fraction"] or ""))
    return -value if match["sign"] else value


def _category_amounts(text: str) -> set[tuple[str, Decimal]]:
    """(category, amount) for each category named beside an amount: the first after it, else the last before."""
    pieces = _pieces(text)
    pairs = set()
    for i, (kind, category) in enumerate(pieces):
        if kind == "category":
            amount = _amount_beside(pieces, i, 1)
            amount = _amount_beside(pieces, i, -1) if amount is None else amount
            if amount is not None:
                pairs.add((category, amount))
    return pairs


def _amount_beside(pieces: list[tuple[str, object]], i: int, step: int) -> Decimal | None:
    """The nearest amount from pieces[i] towards step, in the same clause and within _BESIDE words."""
    words = 0
    i += step
    while 0 <= i < len(pieces) and words <= _BESIDE:
        kind, value = pieces[i]
        if kind == "amount":
            return value
        if kind in ("stop", "category"):
            return None
        if kind != "currency":  # '18.50 EUR on food': the code is part of the amount
            words += 1
        i += step
    return None


def _pieces(text: str) -> list[tuple[str, object]]:
    """Text as (kind, value): stops, categories, currencies, amounts (a number written with money), words."""
    pieces = [_piece(match) for match in _PIECE.finditer(text)]
    for i, (kind, match) in enumerate(pieces):
        # A number with a currency right before or after it is an amount: '800 JPY', '¥800'.
        beside_money = any(0 <= j < len(pieces) and pieces[j][0] == "currency" for j in (i - 1, i + 1))
        if kind == "number" and match["percent"] is None and (match["fraction"] or beside_money):
            pieces[i] = ("amount", _value(match))
    return pieces


def _piece(match: re.Match) -> tuple[str, object]:
    """What one matched piece of text is; a number keeps its match until it is known to be an amount."""
    if match["number"]:
        return "number", match
    if match["symbol"]:
        return "currency", None
    if match["stop"]:
        return "stop", None
    word = match["word"].casefold()
    if word in _CLAUSE_WORDS:
        return "stop", None
    if word in _CATEGORY_WORDS:
        return "category", word
    if word in _CURRENCY_WORDS or money.is_currency(match["word"]):
        return "currency", None
    return "word", None
