"""Public HTML pages: /privacy, the privacy policy Meta asks for before an app goes live."""

from __future__ import annotations

import html

import bottle

from expensebot.config import Config

PRIVACY = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Privacy — {name}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}</style>
</head>
<body>
<h1>Privacy</h1>
<p>This Messenger bot keeps a list of the expenses you text it. It is run by {operator}.
Questions and requests: {contact}.</p>

<h2>What is stored</h2>
<ul>
<li>Instead of your Messenger id, a keyed hash of it: a code that only this bot can compute from your id,
and that cannot be turned back into it.</li>
<li>The texts you send the bot, when they arrived, and the expenses read from them (item, amount,
currency, date, category).</li>
<li>Your settings, if you change them: currency, time zone and budgets.</li>
<li>When you send a photo of a receipt: the text read from it, on this bot's own machine, until you
save, fix or drop it (or for 7 days at most). The photo itself is not kept: it is read and
forgotten.</li>
</ul>
<p>Your name, profile and contacts are never asked for or stored. Technical logs name people only by
the keyed hash.</p>

<h2>Who else sees it</h2>
<p>Meta delivers the messages between you and the bot.
{ai}</p>
<p>When you ask for your report, the bot sends you a link to a page with your own expenses. Anyone
who has that link can open it, so don't share it; it stops working 24 hours after it was sent, or as
soon as you erase your data.</p>

<h2>For how long</h2>
<p>Until you erase it: nothing is deleted on a schedule. Backups of the database are kept for a
limited number of days and then overwritten.</p>

<h2>Erasing everything</h2>
<p>Send the bot <strong>delete my data</strong> and confirm. Every expense, message, setting, budget
and receipt of yours is deleted at once. An erasure is final: it cannot be undone. Only the time of the erasure is
kept, under the keyed hash, so that an old message Messenger delivers again is not stored again.</p>
</body>
</html>
"""
AI_ON = ("To sort expenses into categories, the item texts of your expenses are sent to an AI service "
         "({provider}); it sees those texts, not who sent them. The text read from a receipt photo (never "
         "the photo) may be sent to it too, to find the total, date and shop.")
AI_OFF = "No AI service is used: no one else sees your texts."


def install_privacy(app: bottle.Bottle, config: Config) -> None:
    """Add GET /privacy to app: the page for this configuration, every configured value HTML-escaped."""
    ai = AI_ON.format(provider=html.escape(_host(config.ai_url) or "the configured AI service")) \
        if config.ai_enabled else AI_OFF
    page = PRIVACY.format(name=html.escape(config.operator or "expensebot"),
                          operator=html.escape(config.operator or "the person who set it up"),
                          contact=html.escape(config.contact or "through the Page that runs this bot"),
                          ai=ai)

    @app.get("/privacy")
    def privacy():
        bottle.response.content_type = "text/html; charset=utf-8"
        return page


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
