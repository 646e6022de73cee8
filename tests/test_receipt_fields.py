"""The rules that find a receipt's merchant, total, currency and date in OCR'd lines."""

import datetime

import pytest

from expensebot.receipts.fields import Fields, read_fields

TODAY = datetime.date(2026, 12, 7)


def read(lines, default_currency="EUR"):
    return read_fields(lines, default_currency=default_currency, today=TODAY)


def test_a_us_receipt():
    found = read([
        "Corner Market",
        "144 Oak Avenue",
        "Springfield, IL 62701",
        "Date: 11/05/2026  Time: 14:32",
        "Milk 1L  3.49",
        "Bread  2.99",
        "SUBTOTAL  6.48",
        "Sales Tax 8.25%  0.53",
        "TOTAL  $7.01",
        "CASH  20.00",
        "CHANGE  12.99",
    ], default_currency="USD")
    assert found == Fields(merchant="Corner Market", total_minor=701, currency="USD", date=datetime.date(2026, 11, 5))
    assert found.is_receipt


def test_glued_keyword_and_code_with_decimal_comma():
    found = read(["REWE Markt", "Vollmilch  1,19", "Brezel  0,79", "SUMMEEUR  8,67", "BAR  10,00", "RÜCKGELD  1,33"],
                 default_currency="USD")
    assert (found.total_minor, found.currency) == (867, "EUR")


@pytest.mark.parametrize("line, currency, total_minor", [
    ("TOTAL  1.234,56", "EUR", 123456),
    ("TOTAL  $1,234.56", "USD", 123456),
    ("TOTAL A PAYER  1 234,56", "EUR", 123456),
    ("GESAMT  CHF 1'234.50", "CHF", 123450),
    ("TOTAL  12,5", "EUR", None),  # cents are always printed: not an amount
    ("AMOUNT DUE  ¥1,280", "JPY", 1280),
    ("合計  ￥12,800", "JPY", 12800),
    ("TOTAL A PAGAR  R$ 81,33", "BRL", 8133),
    ("BALANCE DUE  128,53 zł", "PLN", 12853),
    ("TOTALE  1O,5O", "EUR", 1050),  # O read for 0
    ("TOTAL  l2.34", "EUR", 1234),  # l read for 1
])
def test_amounts_as_receipts_print_them(line, currency, total_minor):
    found = read(["Shop", line], default_currency="EUR")
    assert found.total_minor == total_minor
    if total_minor:
        assert found.currency == currency


def test_yen_have_no_minor_unit():
    found = read(["Golden Wok", "2026/11/30 12:05", "Ramen  980", "Gyoza  450", "TOTAL  1,430"], default_currency="JPY")
    assert (found.total_minor, found.currency, found.date) == (1430, "JPY", datetime.date(2026, 11, 30))


def test_the_amount_on_the_line_below_a_bare_keyword():
    assert read(["Bistro", "TOTAL", "12,50 EUR", "VISA  12,50"]).total_minor == 1250


def test_a_column_header_is_not_the_total():
    found = read(["Mercado Central", "Articulos  Importe", "Consultoria  99,00", "Diseno web  20,00",
                  "TOTAL A PAGAR  119,00"])
    assert found.total_minor == 11900


def test_subtotal_tax_change_and_cash_lines_are_not_the_total():
    lines = ["Cafe Sol", "SUBTOTAL  40,00", "IVA 21%  8,40", "EFECTIVO  50,00", "CAMBIO  1,60", "TOTAL  48,40"]
    assert read(lines).total_minor == 4840


def test_the_pre_tax_total_is_not_the_total():
    lines = ["Le Petit Bistrot", "TOTAL HT  10,00", "TVA 20%  2,00", "TOTAL TTC  12,00"]
    assert read(lines).total_minor == 1200


def test_a_total_including_tax_is_the_total():
    assert read(["The Old Oak Pub", "Ale  4.70", "TOTAL incl. VAT  23.40"], default_currency="GBP").total_minor == 2340


def test_a_tip_line_is_added_not_taken():
    lines = ["Trattoria da Mario", "SUBTOTAL  40.00", "TIP 20%  8.00", "TOTAL  48.00", "VISA  48.00"]
    assert read(lines, default_currency="USD").total_minor == 4800


def test_a_misread_total_is_overruled_by_subtotal_plus_tax_printed_elsewhere():
    lines = ["Quick Stop", "SUBTOTAL  20.00", "TAX  1.80", "TOTAL  21.30", "VISA  21.80"]
    assert read(lines, default_currency="USD").total_minor == 2180


def test_without_a_keyword_the_largest_amount_but_not_the_cash_handed_over():
    lines = ["Bakery", "Croissant  2.20", "Coffee  3.10", "CASH  20.00", "CHANGE  14.70"]
    assert read(lines, default_currency="USD").total_minor == 310


def test_percentages_times_and_phone_numbers_are_not_amounts():
    lines = ["Apotheke am Markt", "Tel. 030 1234567", "07.11.2026 14:32", "MwSt 19%"]
    assert read(lines, default_currency="JPY").total_minor is None
    assert read([*lines, "Salbe  12,99"]).total_minor == 1299


def test_text_without_an_amount_is_not_a_receipt():
    found = read(["Welcome to the Alps", "Zermatt", "Matterhorn 4478 m"])
    assert found.total_minor is None
    assert not found.is_receipt


@pytest.mark.parametrize("line, currency, expected", [
    ("2026-12-07", "EUR", datetime.date(2026, 12, 7)),
    ("07.12.2026", "USD", datetime.date(2026, 12, 7)),  # dots are never the US order
    ("07.12.26 09:15", "EUR", datetime.date(2026, 12, 7)),
    ("Data: 07/12/2026", "EUR", datetime.date(2026, 12, 7)),
    ("12/07/2026", "USD", datetime.date(2026, 12, 7)),
    ("12/07/2026", "EUR", datetime.date(2026, 7, 12)),
    ("7 Dec 2026", "GBP", datetime.date(2026, 12, 7)),
    ("Dec 7, 2026", "USD", datetime.date(2026, 12, 7)),
    ("07-DEC-26", "USD", datetime.date(2026, 12, 7)),
    ("7. Dezember 2026", "EUR", datetime.date(2026, 12, 7)),
    ("7 de diciembre de 2026", "EUR", datetime.date(2026, 12, 7)),
    ("12 juil. 2026", "EUR", datetime.date(2026, 7, 12)),
    ("07/12/26", "EUR", datetime.date(2026, 12, 7)),
    ("1Jun202617:53  #76174", "GBP", datetime.date(2026, 6, 1)),  # OCR glued the time to the year
    ("25N0V 2026 11:52", "GBP", datetime.date(2026, 11, 25)),  # OCR read the O of NOV as 0
    ("Date:0ct 17,2026  Time: 18:03", "USD", datetime.date(2026, 10, 17)),
])
def test_dates_as_receipts_print_them(line, currency, expected):
    assert read(["Shop", line, f"TOTAL  1,00 {currency}"], default_currency="EUR").date == expected


def test_us_order_on_an_english_receipt_with_no_currency_for_a_us_person():
    lines = ["Shop", "04/05/2026", "AMOUNT DUE  3.50", "THANK YOU"]
    assert read(lines, default_currency="USD").date == datetime.date(2026, 4, 5)
    assert read(lines, default_currency="GBP").date == datetime.date(2026, 5, 4)


def test_a_date_after_today_is_read_the_other_way_round():
    assert read(["Shop", "12/08/2026", "TOTAL  $1.00"], default_currency="USD").date == datetime.date(2026, 8, 12)


@pytest.mark.parametrize("line", ["01.01.2019", "08.12.2026", "31.02.2026"])
def test_an_implausible_date_is_none(line):
    assert read(["Shop", line, "TOTAL  1,00"]).date is None


def test_the_first_plausible_date_wins():
    lines = ["ACME Design  INVOICE 2026-1234", "Date: 20/11/2026", "Due: 04/12/2026", "TOTAL  1,00"]
    assert read(lines).date == datetime.date(2026, 11, 20)


@pytest.mark.parametrize("currency_line, default_currency, expected", [
    ("TOTAL  $5.00", "CAD", "CAD"),  # a bare $ is the person's dollar
    ("TOTAL  $5.00", "EUR", "USD"),
    ("TOTAL  5.00", "GBP", "GBP"),  # nothing printed: the person's currency
    ("TOTAL  CHF 5.00", "EUR", "CHF"),
    ("TOTAL  5,00 EUR", "USD", "EUR"),
    ("Fries  5.00  kr", "EUR", "SEK"),
])
def test_currency(currency_line, default_currency, expected):
    assert read(["Shop", currency_line], default_currency=default_currency).currency == expected


def test_a_word_ending_in_a_code_is_not_that_currency():
    lines = ["Le Petit Bistrot", "Table 4  Serveur: Luca", "TOTAL  12.50"]
    assert read(lines, default_currency="CHF").currency == "CHF"


def test_merchant_skips_greetings_addresses_phones_and_sites():
    lines = ["*** RECEIPT ***", "WELCOME TO", "www.shop.example", "Tel. 030 1234567", "Hauptstr. 12",
             "Bäckerei Schmidt", "TOTAL  1,00"]
    assert read(lines).merchant == "Bäckerei Schmidt"


def test_merchant_with_a_street_word_but_no_number_is_a_name():
    assert read(["Maple Street Deli", "12 Maple Street", "TOTAL  1.00"]).merchant == "Maple Street Deli"


def test_merchant_beside_the_invoice_number():
    assert read(["Blue Door Cafe  INVOICE 2026-8217", "TOTAL  1.00"]).merchant == "Blue Door Cafe"
    assert read(["Blue Door Cafe INVOICE 2026-8217", "TOTAL  1.00"]).merchant == "Blue Door Cafe"


def test_merchant_is_trimmed():
    assert len(read(["Very " * 20, "TOTAL  1.00"]).merchant) <= 60


def test_no_lines_no_fields():
    assert read([]) == Fields(merchant=None, total_minor=None, currency="EUR", date=None)
