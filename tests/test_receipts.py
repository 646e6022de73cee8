"""Receipt photos end to end: the real app, the real OCR engine, a photo CDN and the Send API as local servers.

A photo is stored and answered at once; the background reads it (downloaded only from RECEIPT_HOSTS)
and sends what it read with Save / Fix / Drop; only Save makes an expense, once. Hostile photos are
answered plainly and nothing that should not be fetched is.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib

import pytest
from conftest import Client, delivery, make_config, message_event, query, wait_for
from receipt_images import make_not_receipt, make_receipt
from test_ai import hangs, model, says  # noqa: F401  (model is a fixture)

from expensebot import money
from expensebot.ingest import effects
from expensebot.receipts import ocr

pytestmark = pytest.mark.skipif(not ocr.available(), reason="the receipts extra is not installed "
                                                           "(pip install -e '.[receipts]')")

NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self, at: dt.datetime):
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


class Person:
    """One person texting the Page; each message sent a second after the one before."""

    def __init__(self, service, graph, psid: str = "4242", clock: Clock | None = None):
        self.client, self.graph, self.psid, self.clock = Client(service), graph, psid, clock
        self.n = 0

    def _post(self, event: dict) -> None:
        assert self.client.post_webhook(delivery(event)).status == 200

    def _ms(self) -> int:
        self.n += 1
        return int(((self.clock or Clock(NOW))().timestamp()) * 1000) + self.n * 1000

    def photo(self, url: str, mid: str | None = None) -> str:
        """Send a photo; return the bot's first reply."""
        before = len(self.graph.requests)
        self._post(message_event(self.psid, mid or f"m_photo_{self.n}", None, timestamp=self._ms(),
                                 attachments=[{"type": "image", "payload": {"url": url}}]))
        assert wait_for(lambda: len(self.graph.requests) > before)
        return self.replies()[before]["text"]

    def say(self, text: str, payload: str | None = None, mid: str | None = None) -> dict:
        before = len(self.graph.requests)
        fields = {"quick_reply": {"payload": payload}} if payload else {}
        self._post(message_event(self.psid, mid or f"m_{self.n}_{text}", text, timestamp=self._ms(), **fields))
        assert wait_for(lambda: len(self.graph.requests) > before)
        return self.replies()[-1]

    def replies(self) -> list[dict]:
        return [request["json"]["message"] for request in self.graph.requests]

    def answer_after(self, count: int, timeout: float = 60) -> dict:
        """The message the bot sends after `count` messages so far (the receipt, once read)."""
        assert wait_for(lambda: len(self.graph.requests) > count, timeout), "no answer after the photo"
        return self.replies()[count]


@pytest.fixture
def receipts_bot(tmp_path, graph, photos, open_service):
    clock = Clock(NOW)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, receipt_hosts=(photos.origin,))
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0), receipts_interval=0.2)
    return service, Person(service, graph, clock=clock), clock


def amount_text(receipt) -> str:
    """The receipt's total as the bot words it: in its currency when the code is printed (the engine reads
    no € or £ sign), else in the person's (USD)."""
    printed = any(receipt.currency in line for line in receipt.lines)
    return money.format_amount(receipt.total_minor, receipt.currency if printed else "USD")


def test_a_receipt_is_read_proposed_and_saved_once(receipts_bot, photos, graph):
    service, person, _ = receipts_bot
    receipt = make_receipt(3)
    url = photos.put(receipt.image)
    assert person.photo(url) == "Got your photo. I'm reading the receipt and will tell you what I find in a moment."
    answer = person.answer_after(1)
    assert answer["text"] == (f"From your receipt: {receipt.merchant} — {amount_text(receipt)}"
                              f", {receipt.date.isoformat()}. Save it?")
    assert [q["title"] for q in answer["quick_replies"]] == ["Save", "Fix", "Drop"]
    save = answer["quick_replies"][0]["payload"]
    # Nothing is counted before the person says so.
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]
    assert person.say("Save", save, mid="m_save")["text"] == (
        f"Saved: {receipt.merchant} — {amount_text(receipt)}, {receipt.date.isoformat()}.")
    person._post(message_event(person.psid, "m_save", "Save", timestamp=person._ms(),
                               quick_reply={"payload": save}))  # redelivered: not stored again
    assert person.say("Save", save)["text"].startswith("That receipt is saved already")
    assert query(service, "SELECT amount_minor, description, substr(occurred_at, 1, 10) FROM expenses") == [
        (receipt.total_minor, receipt.merchant, receipt.date.isoformat())]
    # The image was never kept, nor its URL; the text read goes once it is decided.
    assert query(service, "SELECT status, url, ocr_text FROM receipt_drafts") == [("saved", None, None)]
    assert photos.requests == [url.removeprefix(photos.origin)]


def test_fix_asks_for_the_line_and_the_typed_line_is_what_is_saved(receipts_bot, photos, graph):
    service, person, _ = receipts_bot
    receipt = make_receipt(5)
    person.photo(photos.put(receipt.image))
    answer = person.answer_after(1)
    fix = answer["quick_replies"][1]["payload"]
    reply = person.say("Fix", fix)["text"]
    assert reply.startswith("Type it as it should be saved, for example \"")
    line = reply.split('"')[1]
    assert person.say(line)["text"].startswith(line.split()[0])
    assert query(service, "SELECT count(*) FROM expenses") == [(1,)]
    assert query(service, "SELECT status FROM receipt_drafts") == [("dropped",)]
    assert person.say("Save", answer["quick_replies"][0]["payload"])["text"].startswith("That receipt was dropped")
    assert query(service, "SELECT count(*) FROM expenses") == [(1,)]


def test_drop_saves_nothing_and_a_draft_unanswered_for_7_days_is_dropped(receipts_bot, photos, graph):
    service, person, clock = receipts_bot
    person.photo(photos.put(make_receipt(7).image))
    first = person.answer_after(1)
    assert person.say("Drop", first["quick_replies"][2]["payload"])["text"] == "Dropped: nothing was saved from that receipt."
    person.photo(photos.put(make_receipt(8).image))
    second = person.answer_after(4)
    clock.at = NOW + dt.timedelta(days=8)
    service.receipts.turn()
    reply = person.say("Save", second["quick_replies"][0]["payload"])["text"]
    assert reply.startswith("That receipt was dropped (not answered in 7 days)")
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]


def test_a_button_of_another_persons_draft_does_nothing(receipts_bot, photos, graph):
    service, person, clock = receipts_bot
    person.photo(photos.put(make_receipt(9).image))
    save = person.answer_after(1)["quick_replies"][0]["payload"]
    other = Person(service, graph, psid="777", clock=clock)
    assert other.say("Save", save)["text"].startswith("That receipt is no longer here")
    assert query(service, "SELECT count(*) FROM expenses") == [(0,)]
    assert query(service, "SELECT status FROM receipt_drafts") == [("proposed",)]


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _gif() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize("make_url, reason", [
    (lambda photos: "https://evil.example/receipt.jpg", "the photo is not on Messenger's servers"),
    (lambda photos: "file:///etc/passwd", "the photo is not on Messenger's servers"),
    (lambda photos: photos.redirect("http://127.0.0.1:22/"), "the photo's address sent me elsewhere"),
    (lambda photos: photos.endless(), "the photo is larger than 10 MB"),
    (lambda photos: photos.put(_png_claiming(100_000, 100_000), "bomb.jpg"), "image too large"),
    (lambda photos: photos.put(_gif(), "anim.gif"), "not an image we can read"),
    (lambda photos: photos.put(b"", "empty.jpg"), "empty file"),
    (lambda photos: photos.put(b"GET / HTTP/1.1\r\n" * 100, "text.jpg"), "not an image we can read"),
    (lambda photos: photos.put(make_not_receipt(1)), "no total found: it does not look like a receipt"),
], ids=["other-host", "file-scheme", "redirect-to-ssh", "50-mb", "zip-bomb", "gif", "empty", "text", "no-receipt"])
def test_a_hostile_or_unreadable_photo_is_answered_plainly_and_the_bot_goes_on(receipts_bot, photos, graph,
                                                                                make_url, reason):
    service, person, _ = receipts_bot
    url = make_url(photos)
    first = person.photo(url)
    if first.startswith("I could not read"):  # refused before anything was fetched
        assert reason == "the photo is not on Messenger's servers" and photos.requests == []
        text = first
    else:
        text = person.answer_after(1)["text"]
    assert text == f'I could not read a receipt in that photo ({reason}). Type it instead, like "groceries 23.45".'
    assert query(service, "SELECT status, reason, url FROM receipt_drafts") == [("unreadable", reason, None)]
    assert person.say("tea 3")["text"].startswith("tea — 3.00 USD")


def test_a_photo_waiting_when_the_bot_stops_is_read_after_the_restart_and_told_in_the_next_reply(
        tmp_path, graph, photos, open_service):
    clock = Clock(NOW)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, receipt_hosts=(photos.origin,))
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0), receipts_interval=0.2)
    person = Person(service, graph, clock=clock)
    down = photos.down()
    person.photo(down)
    assert wait_for(lambda: query(service, "SELECT attempts FROM receipt_drafts") == [(1,)])
    service.close()
    receipt = make_receipt(8)
    photos.photos[down.removeprefix(photos.origin)] = receipt.image  # the CDN is back
    del photos.special[down.removeprefix(photos.origin)]
    clock.at = NOW + dt.timedelta(minutes=1)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0), receipts_interval=0.2)
    # Read at once; but PSIDs are kept in memory only, so whom to answer is not known yet.
    assert wait_for(lambda: query(service, "SELECT status, attempts, told_at FROM receipt_drafts") == [
        ("proposed", 2, None)], 60)
    person = Person(service, graph, clock=clock)
    reply = person.say("tea 3")
    assert reply["text"].split("\n")[0] == "tea — 3.00 USD, today"
    assert reply["text"].endswith(f"From your receipt: {receipt.merchant} — 64.48 GBP, {receipt.date}. Save it?")
    assert [q["title"] for q in reply["quick_replies"]] == ["Save", "Fix", "Drop"]
    assert "From your receipt" not in person.say("tea 3")["text"]  # told once


def test_a_burst_of_photos_beyond_the_bound_is_answered_plainly(receipts_bot, photos, graph, monkeypatch):
    service, person, _ = receipts_bot
    monkeypatch.setattr(effects, "MAX_WAITING_PHOTOS", 2)
    for _ in range(2):
        person.photo(photos.down())  # waiting: the CDN answers 503, to be tried again
    assert person.photo(photos.down()) == ("I could not read a receipt in that photo (too many photos are waiting "
                                           "to be read right now). Type it instead, like \"groceries 23.45\".")


def test_delete_my_data_erases_drafts(receipts_bot, photos, graph):
    service, person, _ = receipts_bot
    person.photo(photos.put(make_receipt(12).image))
    person.answer_after(1)
    confirm = person.say("delete my data")["quick_replies"][0]["payload"]
    person.say("Yes, delete", confirm)
    assert query(service, "SELECT count(*) FROM receipt_drafts") == [(0,)]


def test_the_model_may_pick_only_what_the_text_prints(tmp_path, graph, photos, model, open_service):
    """With AI on the model reads the text (never the photo): a total or date it makes up is not taken,
    one it picks from the text is, and a hanging model leaves the rules' reading."""
    import json as jsonlib

    receipt = make_receipt(8)  # Harbor Hardware, 64.48 GBP; its slip also prints the cash handed over
    cash = next(line for line in receipt.lines if line.startswith("CASH")).split()[-1]
    made_up = {"merchant": "Harbor Hardware", "total": "99.99", "date": "2020-01-01", "currency": "EUR"}
    model.will(says(jsonlib.dumps(made_up)), says(jsonlib.dumps({"total": cash, "currency": "gbp"})), hangs)
    clock = Clock(NOW)
    config = make_config(tmp_path, fb_page_access_token="t", fb_graph_url=graph.url, receipt_hosts=(photos.origin,),
                         ai_enabled=True, ai_url=model.url, ai_model="m", ai_timeout=1.0)
    service = open_service(config, now=clock, reply_backoff=(0, 0, 0), receipts_interval=0.2)
    person = Person(service, graph, clock=clock)
    rules = f"From your receipt: Harbor Hardware — 64.48 GBP, {receipt.date}. Save it?"
    person.photo(photos.put(receipt.image))
    assert person.answer_after(1)["text"] == rules  # made up: not printed, not taken
    person.photo(photos.put(receipt.image))
    assert person.answer_after(3)["text"] == rules.replace("64.48", cash)  # printed: the model's pick
    person.photo(photos.put(receipt.image))
    assert person.answer_after(5)["text"] == rules  # hanging: the rules' reading, after AI_TIMEOUT
    sent = [request["json"]["messages"][1]["content"] for request in model.requests]
    assert len(sent) == 3 and all(text.startswith("Harbor Hardware") for text in sent)  # the text, not the image
