"""Find a receipt's merchant, total, currency and date in the lines OCR read from it, by rules.

The total is the amount beside a word receipts print for it (TOTAL, AMOUNT DUE, SUMME, TOTAL A
PAGAR, 合計...), never one beside SUBTOTAL, TAX, CASH, CHANGE or TIP, which sit next to it and are
often larger (the cash handed over) or close. The keyword is the printer's own statement, so it goes
first; the largest amount is only a last resort. When a subtotal and tax or tip are printed, their
sum checks the keyword's amount: it overrules a misread total when the sum is printed elsewhere
(the card line repeats it). OCR glues words ("SUMMEEUR"), so keywords are matched on the letters
alone; it reads O for 0 and l for 1, which are mended only inside numbers. A date must fall within
the year before today: the other readings of 07/12/26 (US order, a due date, a typo) rarely do.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import re
import unicodedata

from expensebot import money

# Amount keywords, squashed to their letters: the first set names only the total, the second also
# names columns and tax tables, so a line of the first kind wins over one of the second.
STRONG_TOTAL = ("GRANDTOTAL", "AMOUNTDUE", "BALANCEDUE", "TOTALDUE", "TOTALTOPAY", "AMOUNTPAYABLE", "TOTALAPAGAR",
                "TOTALAPAYER", "TOTALTTC", "MONTANTTTC", "ZUZAHLEN", "GESAMTBETRAG", "ENDBETRAG",
                "RECHNUNGSBETRAG", "VALORTOTAL", "VALORAPAGAR", "TOTALEEURO", "合計", "合计")
TOTAL = ("TOTAL", "SUMME", "GESAMT", "TOTALE", "IMPORTE", "IMPORTO")
SUBTOTAL = ("SUBTOTAL", "SOUSTOTAL", "ZWISCHENSUMME", "TOTALHT", "NETTO", "IMPONIBILE", "小計", "小计")
TAX = ("TAX", "VAT", "MWST", "UST", "IVA", "TVA", "ICMS", "GST", "HST")
TIP = ("TIP", "GRATUITY", "TRINKGELD", "PROPINA", "GORJETA", "POURBOIRE", "MANCIA", "SERVICE")
# Lines whose amount is something else than the total, even when they also say TOTAL.
NOT_TOTAL = (*SUBTOTAL, *TAX, *TIP, "CHANGE", "CASH", "TENDERED", "RUCKGELD", "RUECKGELD", "GEGEBEN", "BAR",
             "EFECTIVO", "CAMBIO", "DINHEIRO", "TROCO", "ESPECES", "RENDU", "CONTANTI", "RESTO", "SAVING",
             "DISCOUNT", "RABATT", "ITEMS", "ARTIKEL", "QTY")
INCLUDED_TAX = re.compile(r"IN[CK]L(USIVE|UDING|UDED|\.)?(VAT|TAX|MWST|UST|TVA|IVA|GST)")
# ISO codes receipts print; the rarer codes double as words ("ALL", "TOP", "CUP") and are left out.
CODES = ("EUR", "USD", "GBP", "CHF", "BRL", "JPY", "PLN", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "CZK",
         "HUF", "RON", "MXN", "ARS", "CLP", "COP", "INR", "CNY", "HKD", "SGD", "THB", "PHP", "ZAR", "KRW")
CODE = re.compile(r"(?<![A-Z])(" + "|".join(CODES) + r")(?![A-Z])")
GLUED_CODE = re.compile(r"(" + "|".join(CODES) + r")(?![A-Z])")
SIGNS = {"R$": "BRL", "US$": "USD", "C$": "CAD", "A$": "AUD", "HK$": "HKD", "S$": "SGD", "$": None,
         "€": "EUR", "£": "GBP", "¥": "JPY", "￥": "JPY", "円": "JPY", "₹": "INR", "₩": "KRW", "₱": "PHP",
         "CHF": "CHF", "FR.": "CHF", "ZŁ": "PLN", "ZL": "PLN", "ZT": "PLN", "KR": None}
SIGN = re.compile(r"(R\$|US\$|C\$|A\$|HK\$|S\$|\$|€|£|¥|￥|円|₹|₩|₱)|(?<=\d)\s*(CHF|FR\.|Z[ŁLT]|KR)(?![A-Z])")
KRONOR = ("SEK", "NOK", "DKK")
# Words of an English receipt: with no currency printed, they make 07/12 the US 12 July... for a US person.
ENGLISH = ("THANKYOU", "CHANGE", "AMOUNTDUE", "BALANCEDUE", "TAX", "CASHIER", "RECEIPT")

AMOUNT = re.compile(r"(?<![\d.,'#])(\d{1,3}(?:[.,' ]\d{3})+|\d+)(?:[.,](\d{2})(?:\d{1,2}$)?)?(?![\d%])")
LOOKALIKES = str.maketrans("OoIlS|", "001151")
DIGIT_LOOKALIKES = str.maketrans("015", "OLS")
LOOKALIKE = re.compile(r"(?<![A-Za-z])[\dOoIlS|][\dOoIlS|.,]*(?![A-Za-z])")
TIME = re.compile(r"([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?")  # also glued to a year: '202608:46'
PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s*%")
NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,4})\s?([./-])\s?(\d{1,2})\s?[./-]\s?(\d{4}|\d{2})(?!\d)")
DAY_MONTH_YEAR = re.compile(r"(?<!\d)(\d{1,2})\.?[\s-]*(?:de\s+)?((?:[^\W\d_]|0)[^\W_]{2,})\.?,?[\s-]*(?:de\s+)?"
                            r"(\d{4}|\d{2})(?!\d)")
MONTH_DAY_YEAR = re.compile(r"((?:[^\W\d_]|0)[^\W_]{2,}?)\.?\s*(\d{1,2}),?\s*(\d{4})(?!\d)")
MONTHS = {"jan": 1, "ene": 1, "gen": 1, "feb": 2, "fev": 2, "mar": 3, "mrz": 3, "apr": 4, "abr": 4, "avr": 4,
          "may": 5, "mai": 5, "mag": 5, "juin": 6, "jun": 6, "giu": 6, "juil": 7, "jul": 7, "lug": 7, "aug": 8,
          "ago": 8, "aou": 8, "sep": 9, "set": 9, "oct": 10, "okt": 10, "ott": 10, "out": 10, "nov": 11,
          "dec": 12, "dez": 12, "dic": 12}
OLDEST_DAYS = 400  # a receipt older than about a year is more likely a misread date

# Top lines that are not the merchant's name; an address is one when it also has a number.
NOT_MERCHANT = re.compile(r"RECEIPT|RECIBO|RE[CÇ]U\b|BELEG|KASSENBON|QUITTUNG|SCONTRINO|CUPOM|TICKET|WELCOME|"
                          r"WILLKOMMEN|BIENVENID|BIENVENUE|BENVENUT|BEM.?VINDO|TEL\b|PHONE|FAX|WWW|HTTP|@|\.COM|"
                          r"\bVAT\b|UST.?ID|\bCIF\b|\bNIF\b|SIRET|P\.?IVA|CNPJ|STORE\s*#|FILIALE|KASSE")
ADDRESS = re.compile(r"STREET|\bST\b|STR\b|STRASSE|STRAßE|AVENUE|\bAVE?\b|ROAD|\bRD\b|\bRUE\b|\bVIA\b|CALLE|"
                     r"\bRUA\b|CORSO|PLATZ|PLAZA|PLACE")
INVOICE_WORD = re.compile(r"\b(?:INVOICE|RECHNUNG|FACTURE|FACTURA|FATTURA|FATURA|RECEIPT)", re.IGNORECASE)
MERCHANT_LINES = 6
MERCHANT_LENGTH = 60


@dataclasses.dataclass(frozen=True)
class Fields:
    """What a receipt says: each field None when it could not be found."""

    merchant: str | None
    total_minor: int | None
    currency: str | None
    date: datetime.date | None

    @property
    def is_receipt(self) -> bool:
        """A receipt is something with a total: a photo with no amount is something else."""
        return self.total_minor is not None


def read_fields(lines: list[str], *, default_currency: str, today: datetime.date) -> Fields:
    """Find merchant, total (in the currency's minor units), currency and date in a receipt's lines."""
    # NFKC: OCR writes some signs full-width ('386，75', '￥'), and these rules read the plain ones.
    lines = [_mend_numbers(unicodedata.normalize("NFKC", line).strip()) for line in lines if line.strip()]
    printed = printed_currency(lines, default_currency)
    currency = printed or default_currency
    english = _has(_letters(" ".join(lines)), ENGLISH)
    us_order = printed == "USD" or (printed is None and default_currency == "USD" and english)
    return Fields(
        merchant=find_merchant(lines),
        total_minor=find_total(lines, currency),
        currency=currency,
        date=find_date(lines, today, us_order=us_order),
    )


def find_total(lines: list[str], currency: str) -> int | None:
    """The amount beside the total keyword, checked against subtotal + tax/tip; else the largest amount."""
    digits = money.minor_digits(currency)
    found = [_amounts(line, digits) for line in lines]
    labels = [_letters(_label(line)) for line in lines]
    subtotal = _last_beside(SUBTOTAL, labels, found)
    tax, tip = _last_beside(TAX, labels, found) or 0, _last_beside(TIP, labels, found) or 0
    sums = [subtotal + extra for extra in (tax + tip, tax, tip) if extra] if subtotal else []
    keyword = _keyword_total(labels, found)
    printed = {amount for amounts in found for amount in amounts}
    if keyword is not None and keyword in sums:
        return keyword
    for total in sums:
        if total in printed:
            return total
    if keyword is not None:
        return keyword
    plain = [max(amounts) for label, amounts in zip(labels, found) if amounts and not _has(label, NOT_TOTAL)]
    return max(plain, default=None)


def _keyword_total(labels: list[str], found: list[list[int]]) -> int | None:
    """The last amount of the best total line: a strong keyword's first; a bare keyword takes the next line's."""
    best = None
    for index, (label, amounts) in enumerate(zip(labels, found)):
        if _has(INCLUDED_TAX.sub("", label), NOT_TOTAL):
            continue
        rank = 0 if _has(label, STRONG_TOTAL) else 2 if _has(label, TOTAL) else None
        if rank is None:
            continue
        if not amounts and index + 1 < len(found) and found[index + 1] and _bare(label):
            amounts, rank = found[index + 1][:1], rank + 1
        if amounts and (best is None or rank < best[0]):
            best = (rank, amounts[-1])
    return best[1] if best else None


def _bare(label: str) -> bool:
    """Whether a line is a keyword alone (and maybe a currency), so its amount is printed below it."""
    return CODE.sub("", label) in (*STRONG_TOTAL, *TOTAL)


def _last_beside(keywords: tuple[str, ...], labels: list[str], found: list[list[int]]) -> int | None:
    amounts = [amounts[-1] for label, amounts in zip(labels, found) if amounts and _has(label, keywords)]
    return sum(amounts) if keywords is TAX and amounts else (amounts[0] if amounts else None)


def _has(label: str, keywords: tuple[str, ...]) -> bool:
    return any(keyword in label for keyword in keywords)


def _label(line: str) -> str:
    """The words of a line before its first digit: 'TOTAL EUR 12,50' → 'TOTAL EUR '."""
    return re.split(r"\d", line, maxsplit=1)[0]


def _letters(text: str) -> str:
    """Only the letters, upper case, accents dropped: OCR glues and splits words at will."""
    return "".join(char for char in unicodedata.normalize("NFKD", text).upper() if char.isalpha())


def _amounts(line: str, digits: int) -> list[int]:
    """The amounts on a line in minor units, left to right: dates, times, percentages and phones left out."""
    if re.search(r"\bTEL|PHONE|FAX", line, re.IGNORECASE):
        return []
    text = PERCENT.sub(" ", TIME.sub(" ", _without_dates(line)))
    amounts = []
    for match in AMOUNT.finditer(text):
        whole, fraction = re.sub(r"\D", "", match[1]), match[2]
        if fraction is None and digits:
            continue  # cents are always printed: '12' alone is a count, a postcode, a house number
        amount = int(whole) * 10**digits + (int(fraction.ljust(digits, "0")[:digits]) if fraction and digits else 0)
        if 0 < amount <= money.MAX_AMOUNT_MINOR:
            amounts.append(amount)
    return amounts


def _mend_numbers(line: str) -> str:
    """Read O as 0, l and I as 1, S as 5 inside numbers ('1O,5O' → '10,50'), never inside words."""
    def mend(match: re.Match) -> str:
        token = match[0]
        digits, lookalikes = sum(char.isdigit() for char in token), sum(char in "OoIlS|" for char in token)
        return token.translate(LOOKALIKES) if digits and digits >= lookalikes else token
    return LOOKALIKE.sub(mend, line)


def printed_currency(lines: list[str], default_currency: str) -> str | None:
    """The currency whose ISO code or sign is printed most (the total line's first), or None.

    A sign several currencies use ('$', 'kr') means default_currency when it is one of them."""
    seen: collections.Counter[str] = collections.Counter()
    for line in lines:
        upper = line.upper()
        label = _letters(_label(line))
        weight = 10 if _has(label, (*STRONG_TOTAL, *TOTAL)) and not _has(label, NOT_TOTAL) else 1
        codes = (GLUED_CODE if weight > 1 else CODE).findall(upper)
        signs = [_sign_currency(a or b, default_currency) for a, b in SIGN.findall(upper)]
        seen.update({code: weight for code in [*codes, *signs] if code})
    return seen.most_common(1)[0][0] if seen else None


def _sign_currency(sign: str, default_currency: str) -> str | None:
    if sign == "KR":
        return default_currency if default_currency in KRONOR else "SEK"
    return SIGNS.get(sign) or money.currency_for_symbol(sign, default_currency)


def find_date(lines: list[str], today: datetime.date, *, us_order: bool) -> datetime.date | None:
    """The first date printed within the year before today; US order (month first) when us_order."""
    oldest = today - datetime.timedelta(days=OLDEST_DAYS)
    for line in lines:
        for day in _dates(TIME.sub(" ", line), us_order):
            if oldest <= day <= today:
                return day
    return None


def _dates(line: str, us_order: bool) -> list[datetime.date]:
    """Every reading of every date on a line, the likelier reading of each first."""
    readings = []
    for first, separator, second, year in NUMERIC_DATE.findall(line):
        if len(first) == 4:
            readings.append((int(first), int(second), int(year)))
            continue
        year = _year(year)
        if separator == ".":
            orders = [(first, second)]  # dots are never the US order
        else:
            orders = [(second, first), (first, second)] if us_order else [(first, second), (second, first)]
        readings += [(year, int(month), int(day)) for day, month in orders]
    for day, name, year in DAY_MONTH_YEAR.findall(line):
        if _month(name):
            readings.append((_year(year), _month(name), int(day)))
    for name, day, year in MONTH_DAY_YEAR.findall(line):
        if _month(name):
            readings.append((int(year), _month(name), int(day)))
    dates = []
    for year, month, day in readings:
        try:
            dates.append(datetime.date(year, month, day))
        except ValueError:
            continue
    return dates


def _without_dates(line: str) -> str:
    line = NUMERIC_DATE.sub(" ", line)
    line = DAY_MONTH_YEAR.sub(lambda m: " " if _month(m[2]) else m[0], line)
    return MONTH_DAY_YEAR.sub(lambda m: " " if _month(m[1]) else m[0], line)


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def _month(name: str) -> int | None:
    """The month a name or abbreviation stands for, in the six languages: 'Dezember' → 12, 'juil.' → 7."""
    name = _letters(name.translate(DIGIT_LOOKALIKES)).lower()  # OCR reads NOV as N0V
    return MONTHS.get(name[:4]) or MONTHS.get(name[:3]) if len(name) <= 10 else None


def find_merchant(lines: list[str]) -> str | None:
    """The first top line that is mostly letters and not an address, phone, web site, greeting or date."""
    for line in lines[:MERCHANT_LINES]:
        for part in re.split(r"\s{2,}", line):
            part = INVOICE_WORD.split(part)[0].strip(" *-=:.,#")
            letters = sum(char.isalpha() for char in part)
            if letters < 3 or letters < 0.6 * len(part.replace(" ", "")) or sum(c.isdigit() for c in part) > 1:
                continue
            address = ADDRESS.search(part.upper()) and any(char.isdigit() for char in part)
            if address or NOT_MERCHANT.search(part.upper()) or _dates(part, False):
                continue
            return part[:MERCHANT_LENGTH].strip()
    return None
