"""The words of every reply: how a reading, a command's outcome or computed totals are said.

What a message means is read in chat/meaning.py; this module only words the answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from expensebot.chat import rules
from expensebot.chat.meaning import DELETE_CANCEL, DELETE_CONFIRM
from expensebot.chat.parser import (
    BAD_RATE,
    MIXED_CURRENCIES,
    PER_ONE_OR_ALL,
    QUANTITY_ONLY,
    RATE_ONE_EXPENSE,
    RATE_OWN_CURRENCY,
    with_date,
)
from expensebot.money import format_amount, minor_digits
from expensebot.settings import Settings
from expensebot.summary import BudgetUse, Summary

MAX_REPLY_CHARS = 1990  # the Send API refuses 2000 and more
MAX_QUICK_REPLIES = 13  # and more than 13 quick replies
MAX_BUTTON_TEXT = 640  # and a button template's text of more than 640
HELP = (
    "Text me what you spent, one expense per line:\n"
    "  coffee 4.50\n"
    "  lunch 250 PHP #food\n"
    "  sushi 500 yen\n"
    "  taxi 12,50 yesterday\n"
    "  coffee 4.50 lunch 12\n"
    "Ask: summary [today|week|month|year|all|2026|november|2026-11|last 7 days], "
    "\"how much on food this month?\"\n"
    "Budgets: budget food 300, budget 1500, budgets, budget food off\n"
    "Recurring: rent 1200 monthly, netflix 15.99 monthly on 15, gym 30 weekly, recurring, stop rent\n"
    "Settings: currency EUR, timezone Manila, settings\n"
    "Also: undo (or undo 2), report, digest off (or on: last month's digest), delete my data."
)
KEPT = "Kept. Nothing was deleted."
HINT = "I couldn't find an amount in that. Try \"coffee 4.50\" — or \"help\"."
REPORT_NOT_SET_UP = "Report pages are not set up here: the bot's operator has not given it a public address yet."
WELCOME = (
    "Hi! Text me what you spend and I keep the list and the totals. For example:\n"
    "  coffee 4.50\n"
    "  lunch 12 euros #food\n"
    "  how much on food this month?\n"
    "Which currency do you spend in most? (You can change it any time: \"currency EUR\".)"
)
DID_YOU_MEAN = {
    "summary": "Did you mean a summary? Try: summary, summary week, summary 2026, summary november, "
               "summary 2026-11, summary last 7 days.",
    "undo": "Did you mean undo? \"undo\" removes your latest expense, \"undo 3\" the latest 3 (at most 50).",
    "help": "Did you mean help? Send \"help\".",
    "delete": "Did you mean \"delete my data\"? Send exactly that and I ask before erasing anything.",
    "currency": "Did you mean to set your currency? Try: currency EUR, currency €, currency yen.",
    "timezone": "I don't know that time zone. Try a city or an IANA name: timezone Manila, "
                "timezone America/New_York.",
    "tz": "I don't know that time zone. Try: timezone Manila, timezone Europe/Berlin.",
    "settings": "Did you mean settings? Send \"settings\" to see your currency and time zone.",
    "budget": "Did you mean a budget? Try: budget food 300, budget 1500 (everything), budgets, "
              "budget food off. Budgets are in your own currency.",
    "budgets": "Did you mean budgets? Send \"budgets\" to see them.",
    "report": "Did you mean report? Send \"report\".",
    "digest": "Did you mean the monthly digest? Send \"digest off\" to stop it, \"digest on\" to have it again.",
    "recurring": "Did you mean your recurring expenses? Send \"recurring\" to see them.",
    "stop": "Did you mean to stop a recurring expense? Try: stop rent, stop 2 (its number in \"recurring\").",
    "recurring_not_one_expense": "Not saved: a recurring expense is one item and its amount, then how often: "
                                 "\"rent 1200 monthly\", \"netflix 15.99 monthly on 15\", "
                                 "\"gym 30 weekly since 2026-01-05\".",
    "recurring_too_early": "Not saved: a recurring expense starts in 2004 or later.",
    "recurring_too_late": "Not saved: a recurring expense starts at most a year from today.",
    "recurring_bad_day": "Not saved: \"on\" takes a day of the month, 1 to 31, after \"monthly\": "
                         "\"netflix 15.99 monthly on 15\".",
    "question": "I couldn't read that question. Try: \"how much on food this month?\", "
                "\"how much did I spend this week?\", \"coffee this year?\".",
}
# What to write instead, for each reason a line with an amount was not saved.
_ADVICE = {
    MIXED_CURRENCIES: "Write the currency on each amount (\"lunch 12 EUR tip 2 EUR\") or one expense per line.",
    PER_ONE_OR_ALL: "Write the total after the count: \"2 coffees 6\".",
    QUANTITY_ONLY: "Write the price too: \"rice 2 kg 10\".",
    RATE_OWN_CURRENCY: "Write the currency you paid in before the @ (\"sushi 500 JPY @ 0.0062\"), "
                       "or leave the rate out.",
    BAD_RATE: "Write how much of your currency one unit of the other costs: \"sushi 500 JPY @ 0.0062\".",
    RATE_ONE_EXPENSE: "Write the expense with its rate on a line of its own.",
}


@dataclasses.dataclass(frozen=True)
class QuickReply:
    title: str
    payload: str


def expenses_reply(expenses: list, rejected: list, today_totals: list, today: dt.date, edited: bool,
                   budgets: list[BudgetUse] = (), conversions: list = ()) -> str:
    """Say how each line was read (and converted), the day's running total and the month's use of its budgets."""
    conversions = list(conversions) or [None] * len(expenses)
    lines = [("Updated: " if edited else "") + _expense_line(e, today, c) for e, c in zip(expenses, conversions)]
    lines += [_asked(r) if r.choices else f"Line {r.line + 1} not read: {r.reason}." for r in rejected]
    if today_totals:
        lines.append("Today: " + ", ".join(format_amount(total, currency) for currency, total, *_ in today_totals)
                     + _day_converted(today_totals if conversions else []))
    lines += [budget_line(use) for use in budgets]
    return fit(lines)


def hint_reply(rejected: list) -> str:
    """Answer text that holds no expense: why, when a line came close, and an example."""
    reasons = [r.reason for r in rejected if r.reason != "no amount"]
    if not reasons:
        return HINT
    if reasons[0] == "several amounts":
        return fit(["Not saved: I see more than one amount and can't tell which goes with what.",
                    "Write an item before each amount (\"coffee 4.50 lunch 12\") or one expense per line."])
    advice = _ADVICE.get(reasons[0], "Try \"coffee 4.50\" — or \"help\".")
    return fit([f"Not saved: {reasons[0]}.", advice])


def _asked(line) -> str:
    codes = ", ".join(code for code, _ in line.choices)
    return (f"Line {line.line + 1} not saved yet: which currency did you mean? ({codes}) "
            f"Pick one, or write the code: \"{line.choices[0][1]}\".")


def which_currency_reply(line) -> tuple[str, tuple[QuickReply, ...]]:
    """Ask which currency a word like 'dollars' meant; each quick reply is the line with a code."""
    codes = ", ".join(code for code, _ in line.choices)
    text = fit([f"Not saved yet: which currency did you mean on line {line.line + 1}? ({codes})",
                f"Pick one, or write the code: \"{line.choices[0][1]}\"."])
    # Each payload carries the line's day: a choice picked after midnight must not move the expense.
    return text, tuple(QuickReply(code, with_date(rewritten, line.date) if line.date else rewritten)
                       for code, rewritten in line.choices)


def summary_reply(summary: Summary) -> str:
    """Render computed totals; every number comes from the Summary."""
    if not summary.currencies:
        return f"{summary.label}: no expenses."
    lines = []
    for total in summary.currencies:
        lines.append(f"{summary.label}: {format_amount(total.total_minor, total.currency)} in {_expenses(total.count)}")
        top = [f"{c.category or 'uncategorized'} {format_amount(c.total_minor, total.currency)}"
               for c in total.categories[:3]]
        lines.append("Top: " + ", ".join(top))
    return fit(lines + converted_lines(summary))


def converted_lines(summary: Summary) -> list[str]:
    """With other currencies than the person's: the converted total, and what it leaves out and why."""
    converted = summary.converted
    if not summary.mixed:
        return []
    lines = [f"≈ {format_amount(converted.total_minor, converted.currency)} in all"
             f" ({_at_which_rate(converted)})"] if converted.count else []
    if converted.pending:
        waits = "waits for its rate" if converted.pending == 1 else "wait for their rate"
        lines.append(f"{_expenses(converted.pending)} {waits}, and will be added when it is published.")
    for code in converted.unconverted:
        if code in converted.own_rate_only:
            lines.append(f"{code} is in the total only at your own rate: the ECB publishes no rate for it.")
        else:
            lines.append(f"{code} is not in the total: the ECB publishes no rate for it.")
    return lines


def _at_which_rate(converted) -> str:
    """'3 expenses at the ECB rate of their day', or how many of them are at the person's own rate."""
    ecb, own = converted.count - converted.at_own_rate, converted.at_own_rate
    if not own:
        return f"{_expenses(ecb)} at the ECB rate of their day"
    if not ecb:
        return f"{_expenses(own)} at your own rate"
    return f"{_expenses(converted.count)}: {ecb} at the ECB rate of their day, {own} at your own rate"


def undo_reply(undone: list) -> str:
    """Name every expense an undo removed, newest first."""
    if not undone:
        return "Nothing to undo."
    return fit([f"Removed: {row['description'] or 'expense'} — {format_amount(row['amount_minor'], row['currency'])}."
                for row in undone])


def rule_line(rule: dict, next_date: dt.date | None = None) -> str:
    """'rent — 1200.00 EUR monthly', and its next due date when given."""
    amount = format_amount(rule["amount_minor"], rule["currency"])
    line = f"{rule['description'] or 'expense'} — {amount} {rule['period']}"
    return f"{line}, next {next_date.isoformat()}" if next_date else line


def rule_set_reply(rule: dict, next_date: dt.date, today: dt.date) -> str:
    since = f", since {rule['start_date']}" if rule["start_date"] != today.isoformat() else ""
    return f"Recurring: {rule_line(rule)}{since}. Next: {next_date.isoformat()}."


TOO_MANY_RULES = ("Not saved: you have 50 recurring expenses, as many as I keep. "
                  "Stop one first (\"recurring\" lists them).")


def rules_reply(lines: list[str]) -> str:
    if not lines:
        return "You have no recurring expenses. Write one like \"rent 1200 monthly\"."
    return fit(["Your recurring expenses:", *(f"{number}. {line}" for number, line in enumerate(lines, start=1))])


def rule_stopped_reply(rule: dict | None, target: str) -> str:
    if rule is None:
        return f"No recurring expense \"{target[:60]}\". Send \"recurring\" to see yours."
    return f"Stopped: {rule_line(rule)}. The expenses it added stay."


def rule_undone_reply(rule: dict) -> str:
    return f"Removed: the recurring {rule_line(rule)}, and the {_expenses(rule['expenses'])} it added."


def added_lines(added: list[dict], count: int) -> list[str]:
    """The recurring expenses made since the person's last message: a few, then how many more."""
    lines = [f"Added: {row['description'] or 'expense'} {format_amount(row['amount_minor'], row['currency'])}"
             f" on {row['due_date']} ({row['period']})" for row in added]
    return lines + ([f"and {count - len(added)} more"] if count > len(added) else [])


def question_reply(summary: Summary, term: str | None) -> str:
    """Answer 'how much on food this month?' from computed totals."""
    if term is None:
        return summary_reply(summary)
    if not summary.currencies:
        return f"{summary.label}: nothing on {term}."
    return fit([f"{summary.label}, {term}: {format_amount(t.total_minor, t.currency)} in {_expenses(t.count)}"
                for t in summary.currencies] + converted_lines(summary))


def edited_command_reply(text: str) -> str:
    """Answer an edit that reads as a command: it is not carried out (a command runs once, when sent)."""
    text = "delete my data" if text.strip() in (DELETE_CONFIRM, DELETE_CANCEL) else " ".join(text.split())
    return (f"Edits are not carried out as commands, so nothing changed. "
            f"Send \"{text[:200]}\" as a new message.")


def currency_choices(codes) -> tuple[QuickReply, ...]:
    """Quick replies that set the person's currency."""
    return tuple(QuickReply(code, f"currency {code}") for code in codes)


def currency_ask_reply(codes, current: str) -> tuple[str, tuple[QuickReply, ...]]:
    # 'dollars' names 16 currencies; Messenger refuses a message with more than 13 quick replies.
    return (f"Your currency is {current}. Which one should amounts without a currency be in?",
            currency_choices(codes[:MAX_QUICK_REPLIES]))


def currency_set_reply(code: str) -> str:
    # An example written with the currency's own minor digits: "4.50" is no amount in JPY.
    amount = format_amount(450 * 10 ** max(minor_digits(code) - 2, 0), code)
    return (f"Your currency is now {code}: \"coffee {amount.split()[0]}\" is read as {amount}. "
            "Budgets you set from now on are in it too.")


def timezone_set_reply(tz: str, now: dt.datetime) -> str:
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    return f"Your time zone is now {tz} (it is {local:%H:%M} on {local:%a %d %b} there). Today and summaries follow it."


def settings_reply(settings: Settings) -> str:
    return fit([f"Currency: {settings.currency}", f"Time zone: {settings.tz}",
                "Change them with \"currency EUR\" or \"timezone Manila\"."])


def budget_set_reply(use: BudgetUse | None, category: str, amount_minor: int, currency: str) -> str:
    amount = format_amount(amount_minor, currency)
    line = f"Budget set: {_budget_name(category)} {amount} a month."
    lines = [line, budget_line(use)] if use else [line]
    if category and category not in rules.CATEGORIES:
        # Expenses get one of the rules' categories unless tagged: say so, or 'budget taxi 50' stays at 0.00.
        filed = rules.categorize(category)
        lines.append(f"Only expenses tagged #{category} count toward it" + (
            f": \"{category}\" is filed under {filed}, so \"budget {filed} {amount.split()[0]}\" "
            f"would count every {category}." if filed else "."))
    return fit(lines)


def budget_off_reply(category: str, removed: bool) -> str:
    name = _budget_name(category)
    return f"Budget removed: {name}." if removed else f"There was no budget for {name}."


def budgets_reply(uses: list[BudgetUse]) -> str:
    if not uses:
        return "No budgets yet. Set one with \"budget food 300\" or \"budget 1500\" (everything)."
    return fit(["This month:", *(budget_line(use) for use in uses)])


def budget_line(use: BudgetUse) -> str:
    """'Food: 250.00 of 300.00 USD', and plainly when it is over."""
    spent = format_amount(use.spent_minor, use.currency).rsplit(" ", 1)[0]
    line = f"{_budget_name(use.category).capitalize()}: {spent} of {format_amount(use.amount_minor, use.currency)}"
    if use.over:
        return f"{line} — over budget by {format_amount(use.spent_minor - use.amount_minor, use.currency)}."
    return line


def _budget_name(category: str) -> str:
    return category or "everything"


def delete_request_reply() -> tuple[str, tuple[QuickReply, ...]]:
    return ("This erases every expense, message, setting and budget of yours that I keep. Are you sure?",
            (QuickReply("Yes, delete", DELETE_CONFIRM), QuickReply("No, keep", DELETE_CANCEL)))


def deleted_reply(messages: int, expenses: int) -> str:
    return (f"Done: I erased your {messages} messages and {expenses} expenses. "
            "Nothing of yours is left here.")


def late_setting_reply(settings: Settings) -> str:
    """Answer a setting that arrived after one sent later: the later one stands."""
    return fit(["That change reached me after a later one, so the later one stands.",
                f"Currency: {settings.currency}", f"Time zone: {settings.tz}"])


def reread_line(count: int) -> str:
    """Say that expenses sent after a setting that arrived late were read again with it."""
    return f"It reached me late: {_expenses(count)} you sent after it now follow it too."


def late_budget_reply(category: str) -> str:
    """Answer a budget that arrived after one sent later for the same category."""
    return f"That budget reached me after a later one for {_budget_name(category)}, so the later one stands."


def digest_reply(month: Summary, before: Summary, over: list[BudgetUse]) -> list[str]:
    """The lines of a month's digest: its totals and top categories as `summary` words them, the change
    against the month before, and the budgets it went over. Every number comes from the Summaries."""
    lines = [f"Your digest of {month.label}:", *summary_reply(month).split("\n"), _change(month, before)]
    return lines + [budget_line(use) for use in over] + ["(\"digest off\" stops these.)"]


def _change(month: Summary, before: Summary) -> str:
    """Against the month before: in all, in the person's currency, when both months are wholly converted;
    else per currency."""
    if not before.currencies:
        return f"Change: first month (no expenses in {before.label})."
    now, then = month.converted, before.converted
    if now is not None and then is not None and not (now.pending or now.unconverted or then.pending
                                                     or then.unconverted):
        in_all = " in all" if month.mixed or before.mixed else ""
        changes = [_signed(now.total_minor - then.total_minor, now.currency) + in_all]
    else:
        totals = {t.currency: t.total_minor for t in month.currencies}  # in the summary's order
        for total in before.currencies:
            totals[total.currency] = totals.get(total.currency, 0) - total.total_minor
        changes = [_signed(minor, currency) for currency, minor in totals.items()]
    return f"Change against {before.label}: {', '.join(changes)}"


def _signed(minor: int, currency: str) -> str:
    return ("+" if minor > 0 else "") + format_amount(minor, currency)


def digest_set_reply(on: bool, late: bool) -> str:
    if late:
        return "That change reached me after a later one about the digest, so the later one stands."
    if on:
        return ("Monthly digest on: my first reply in a new month sums up the month before "
                "(when you had expenses in it).")
    return "Monthly digest off. Send \"digest on\" to have it again."


def fit(lines: list[str], limit: int = MAX_REPLY_CHARS) -> str:
    """Join lines, cutting whole lines so the reply stays under the Send API's limit."""
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) > limit:
            return (text + "\n…") if text else line[:limit - 1] + "…"
        text = candidate
    return text


def _expenses(count: int) -> str:
    return f"{count} expense" if count == 1 else f"{count} expenses"


def _expense_line(expense, today: dt.date, conversion=None) -> str:
    when = "today" if expense.date == today else (
        "yesterday" if expense.date == today - dt.timedelta(days=1) else expense.date.isoformat())
    tag = f" #{expense.category}" if expense.category else ""
    what = expense.description or "expense"
    return f"{what} — {format_amount(expense.amount_minor, expense.currency)}{_converted(conversion)}, {when}{tag}"


def _day_converted(today_totals: list) -> str:
    """' ≈ 24.35 EUR in all' after a day's totals in several currencies, once all of them are converted."""
    targets = {target for _, _, target, _ in today_totals}
    if len(today_totals) < 2 or len(targets) != 1 or None in targets:
        return ""
    return f" ≈ {format_amount(sum(minor for *_, minor in today_totals), targets.pop())} in all"


def _converted(row) -> str:
    """' ≈ 3.07 EUR (ECB 2026-12-04)' after an amount in another currency than the person's."""
    if row is None or row["rate_source"] == "same":
        return ""
    if row["rate_source"] is None:
        return " (rate pending)"
    if row["rate_source"] == "none":
        return " (no ECB rate for it: not converted)"
    amount = format_amount(row["converted_minor"], row["converted_currency"])
    source = {"ecb": f"ECB {row['rate_day']}", "ecb-provisional": f"ECB {row['rate_day']}, provisional",
              "person": f"your rate {row['rate']}"}[row["rate_source"]]
    return f" ≈ {amount} ({source})"


# ---- receipt photos (docs/CHAT.md, Receipt photos) ------------------------------------------------

RECEIPTS_OFF = 'Receipt photos are not set up here. Type it instead, like "groceries 23.45".'
RECEIPT_READING = "Got your photo. I'm reading the receipt and will tell you what I find in a moment."
RECEIPT_GONE = "That receipt is no longer here. Type it if you want it saved, like \"groceries 23.45\"."


def receipt_line(draft: dict) -> str:
    """'Lidl — 23.45 EUR, 2026-12-05': what was read, as a line of an expense."""
    amount = format_amount(draft["amount_minor"], draft["currency"])
    day = draft["receipt_date"] or "no date (the photo's day)"
    return f"{draft['merchant'] or 'Receipt'} — {amount}, {day}"


def receipt_proposal(draft: dict) -> tuple[str, tuple[QuickReply, ...]]:
    """What a photo was read as, with Save / Fix / Drop."""
    text = f"From your receipt: {receipt_line(draft)}. Save it?"
    return text, tuple(QuickReply(title, f"RECEIPT_{title.upper()}:{draft['id']}") for title in ("Save", "Fix", "Drop"))


def receipt_unreadable(reason: str | None) -> str:
    return (f"I could not read a receipt in that photo ({reason or 'no reason given'}). "
            'Type it instead, like "groceries 23.45".')


def receipt_decided(draft: dict | None, was: str, action: str) -> str:
    """The answer to Save, Fix or Drop: what was done, or why nothing was (a second tap, a draft too old)."""
    if draft is None:
        return RECEIPT_GONE
    if was != "proposed":
        if was == "saved":
            return f"That receipt is saved already: {receipt_line(draft)}."
        if was == "pending":
            return "I'm still reading that receipt; I'll tell you what I find in a moment."
        return f"That receipt was {was} ({draft['reason'] or 'by you'}). " \
               'Type it if you want it saved, like "groceries 23.45".'
    if action == "receipt_save":
        return f"Saved: {receipt_line(draft)}."
    if action == "receipt_fix":
        amount = format_amount(draft["amount_minor"], draft["currency"]).replace(",", "")
        day = f" {draft['receipt_date']}" if draft["receipt_date"] else ""
        name = (draft["merchant"] or "groceries").lower()
        return f'Type it as it should be saved, for example "{name} {amount}{day}".'
    return "Dropped: nothing was saved from that receipt."
