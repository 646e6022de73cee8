"""Currencies, their minor units and symbols: amounts are integers, never floats."""

MAX_AMOUNT_MINOR = 10**12

_ZERO_DIGIT_CODES = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DIGIT_CODES = "BHD IQD JOD KWD LYD OMR TND"
# Active ISO 4217 codes for money people spend; funds, metals and test codes are left out.
_TWO_DIGIT_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR
    KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
    MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD
    SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD
    TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
"""

MINOR_DIGITS = (
    {code: 2 for code in _TWO_DIGIT_CODES.split()}
    | {code: 0 for code in _ZERO_DIGIT_CODES.split()}
    | {code: 3 for code in _THREE_DIGIT_CODES.split()}
)

# The codes each currency sign may stand for. A sign that several currencies write means the
# person's own currency when it is one of them, else the first: "$" is the local money where that
# is written with a bare "$", elsewhere USD; "¥" is the yen and the yuan; "元" the yuan, and also
# how Taiwan, Hong Kong and Macau write their dollar.
_SIGNS = {
    "$": ("USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD", "MXN", "BSD", "BBD", "BZD", "BMD",
          "BND", "KYD", "XCD", "FJD", "GYD", "JMD", "LRD", "NAD", "SBD", "SRD", "TTD", "ARS",
          "CLP", "COP", "CUP", "DOP", "UYU"),
    "¥": ("JPY", "CNY"), "￥": ("JPY", "CNY"), "元": ("CNY", "TWD", "HKD", "MOP"),
    "€": ("EUR",), "£": ("GBP",), "₱": ("PHP",), "₹": ("INR",), "₩": ("KRW",), "₫": ("VND",), "฿": ("THB",),
    "₺": ("TRY",), "₽": ("RUB",), "₦": ("NGN",), "₴": ("UAH",), "₪": ("ILS",), "₸": ("KZT",),
    "円": ("JPY",), "zł": ("PLN",), "Rp": ("IDR",), "Rp.": ("IDR",),
    "US$": ("USD",), "C$": ("CAD",), "CA$": ("CAD",), "A$": ("AUD",), "AU$": ("AUD",), "NZ$": ("NZD",),
    "HK$": ("HKD",), "S$": ("SGD",), "SG$": ("SGD",), "NT$": ("TWD",), "MX$": ("MXN",), "R$": ("BRL",),
}
DOLLAR_CURRENCIES = frozenset(_SIGNS["$"])
# The rupee sign is written for too many rupees to pick one: it is read like the word "rupees".
RUPEE_SIGN = "₨"
RUPEE_CURRENCIES = ("INR", "PKR", "LKR", "NPR", "MUR", "SCR")

# Longest first, so that "US$5" is read as "US$" and not as "U" followed by "S$".
SYMBOLS: tuple[str, ...] = tuple(sorted(_SIGNS, key=lambda symbol: (-len(symbol), symbol)))


def is_currency(code: str) -> bool:
    """Tell whether code is a known ISO 4217 code, written in upper case."""
    return code in MINOR_DIGITS


def minor_digits(code: str) -> int:
    """Return how many digits the currency's minor unit has (2 for cents)."""
    if not is_currency(code):
        raise ValueError(f"unknown currency code {code!r}")
    return MINOR_DIGITS[code]


def currency_for_symbol(symbol: str, default_currency: str) -> str | None:
    """Return the ISO code a currency symbol stands for, or None for an unknown symbol."""
    codes = _SIGNS.get(symbol, ())
    return default_currency if default_currency in codes else next(iter(codes), None)


def currencies_for_symbol(symbol: str) -> tuple[str, ...]:
    """Every code a currency symbol may stand for, whoever writes it ('$' → the dollars); () for none."""
    return RUPEE_CURRENCIES if symbol == RUPEE_SIGN else _SIGNS.get(symbol, ())


def format_amount(amount_minor: int, currency: str) -> str:
    """Write an amount as the parser reads it back: '12345.67 USD', no thousands separators."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount_minor must be an int, not {type(amount_minor).__name__}")
    digits = minor_digits(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    if digits == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{fraction:0{digits}d} {currency}"


# Currencies written as words after an amount ('500 yen', '12 euros', '100 pesos'), lower case.
# A word may name several currencies ('dollars'); the reader then takes the person's own currency
# when it is one of them, and asks otherwise. Most used first: that is the order they are offered in.
_WORDS = {
    "USD CAD AUD NZD SGD HKD TWD JMD BSD BBD BZD FJD TTD GYD LRD NAD": "dollar dollars buck bucks",
    "EUR": "euro euros",
    "JPY": "yen",
    "CNY": "yuan rmb renminbi",
    "PHP MXN ARS CLP COP DOP UYU CUP": "peso pesos",
    "PHP": "piso",
    "GBP": "quid sterling",
    " ".join(RUPEE_CURRENCIES): f"rupee rupees rs {RUPEE_SIGN}",
    "THB": "baht",
    "KRW": "won",
    "VND": "dong",
    "IDR": "rupiah",
    "MYR": "ringgit rm",
    "BRL": "real reais",
    "ZAR": "rand",
    "CHF": "franc francs",
    "SEK NOK DKK ISK": "krona kronor krone kroner kr",
    "PLN": "zloty zlotys złoty",
    "HUF": "forint forints",
    "TRY": "lira liras",
    "ILS": "shekel shekels",
    "RUB": "ruble rubles rouble roubles",
    "UAH": "hryvnia hryvnias",
    "NGN": "naira",
    "KES UGX TZS": "shilling shillings",
    "AED MAD": "dirham dirhams",
    "SAR QAR": "riyal riyals",
    "KWD BHD JOD": "dinar dinars",
    "BDT": "taka",
}
CURRENCY_WORDS = {word: tuple(codes.split()) for codes, words in _WORDS.items() for word in words.split()}
# 'pound' is also a weight: it names money only for a person whose own currency is a pound.
POUND_CURRENCIES = ("GBP", "EGP", "LBP", "SYP", "SDG", "SSP", "FKP", "GIP", "SHP")
# What the welcome and "currency" offer as quick replies.
COMMON_CURRENCIES = ("USD", "EUR", "PHP", "GBP", "JPY", "INR", "AUD", "CAD")


def currencies_for_word(word: str, own_currency: str) -> tuple[str, ...]:
    """The codes a written currency name may stand for ('euros' → EUR); () when it names none."""
    word = word.lower()
    if word in ("pound", "pounds"):
        return (own_currency,) if own_currency in POUND_CURRENCIES else ()
    return CURRENCY_WORDS.get(word, ())
