import pytest

from expensebot.money import (
    MAX_AMOUNT_MINOR,
    MINOR_DIGITS,
    currencies_for_symbol,
    currency_for_symbol,
    format_amount,
    is_currency,
    minor_digits,
)


@pytest.mark.parametrize(("amount_minor", "currency", "expected"), [
    (10000, "USD", "100.00 USD"),
    (1500, "JPY", "1500 JPY"),
    (1234567, "USD", "12345.67 USD"),
    (5, "EUR", "0.05 EUR"),
    (0, "USD", "0.00 USD"),
    (-450, "USD", "-4.50 USD"),
    (1250, "KWD", "1.250 KWD"),
    (7, "BHD", "0.007 BHD"),
    (12000, "KRW", "12000 KRW"),
    (MAX_AMOUNT_MINOR, "USD", "10000000000.00 USD"),
    (MAX_AMOUNT_MINOR, "JPY", "1000000000000 JPY"),
])
def test_format_amount(amount_minor, currency, expected):
    assert format_amount(amount_minor, currency) == expected


@pytest.mark.parametrize("amount", [4.5, 100.0, True, "100"])
def test_format_amount_refuses_anything_but_int(amount):
    with pytest.raises(TypeError):
        format_amount(amount, "USD")


def test_format_amount_refuses_unknown_currency():
    with pytest.raises(ValueError, match="TEA"):
        format_amount(100, "TEA")


@pytest.mark.parametrize("code", [
    "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "XPF", "PYG", "RWF", "KMF", "GNF",
    "DJF", "VUV", "BIF",
])
def test_currencies_without_minor_unit(code):
    assert minor_digits(code) == 0


@pytest.mark.parametrize("code", ["BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"])
def test_currencies_with_three_minor_digits(code):
    assert minor_digits(code) == 3


@pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "PHP", "INR", "CNY", "THB", "NGN", "BRL"])
def test_common_currencies_have_cents(code):
    assert minor_digits(code) == 2


def test_currency_table_is_reasonably_complete():
    assert len(MINOR_DIGITS) >= 150
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in MINOR_DIGITS)


@pytest.mark.parametrize(("code", "expected"), [
    ("USD", True),
    ("PHP", True),
    ("usd", False),
    ("TEA", False),
    ("XXX", False),
    ("", False),
    ("USDX", False),
])
def test_is_currency(code, expected):
    assert is_currency(code) is expected


def test_minor_digits_of_unknown_code_is_value_error():
    with pytest.raises(ValueError, match="ABC"):
        minor_digits("ABC")


@pytest.mark.parametrize(("symbol", "default_currency", "expected"), [
    ("$", "USD", "USD"),
    ("$", "CAD", "CAD"),
    ("$", "AUD", "AUD"),
    ("$", "MXN", "MXN"),
    ("$", "TWD", "TWD"),
    ("$", "EUR", "USD"),
    ("$", "PHP", "USD"),
    ("¥", "CNY", "CNY"),
    ("¥", "USD", "JPY"),
    ("¥", "JPY", "JPY"),
    ("€", "USD", "EUR"),
    ("£", "USD", "GBP"),
    ("₱", "USD", "PHP"),
    ("₹", "USD", "INR"),
    ("₩", "USD", "KRW"),
    ("₫", "USD", "VND"),
    ("฿", "USD", "THB"),
    ("₺", "USD", "TRY"),
    ("₽", "USD", "RUB"),
    ("₦", "USD", "NGN"),
    ("₴", "USD", "UAH"),
    ("₪", "USD", "ILS"),
    ("US$", "CAD", "USD"),
    ("C$", "USD", "CAD"),
    ("A$", "USD", "AUD"),
    ("R$", "USD", "BRL"),
    ("元", "USD", "CNY"),
    ("元", "CNY", "CNY"),
    ("元", "TWD", "TWD"),
    ("元", "HKD", "HKD"),
    ("円", "USD", "JPY"),
    ("円", "CNY", "JPY"),
    ("zł", "USD", "PLN"),
    ("Rp", "USD", "IDR"),
    ("Rp.", "USD", "IDR"),
    ("₸", "USD", "KZT"),
    ("€", "CNY", "EUR"),
    ("%", "USD", None),
    ("", "USD", None),
])
def test_currency_for_symbol(symbol, default_currency, expected):
    assert currency_for_symbol(symbol, default_currency) == expected


@pytest.mark.parametrize(("symbol", "expected"), [
    ("€", {"EUR"}),
    ("¥", {"JPY", "CNY"}),
    ("元", {"CNY", "TWD", "HKD", "MOP"}),
    ("₨", {"INR", "PKR", "LKR", "NPR", "MUR", "SCR"}),
    ("%", set()),
])
def test_currencies_for_symbol(symbol, expected):
    assert set(currencies_for_symbol(symbol)) == expected


def test_the_dollar_sign_may_be_any_dollar_usd_first():
    assert currencies_for_symbol("$")[0] == "USD"
    assert {"CAD", "AUD", "MXN", "TWD"} <= set(currencies_for_symbol("$"))
