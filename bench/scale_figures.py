"""Figures for docs/SCALING.md: database growth per 1,000 people a month, backup and restore at 1 GB.

    .venv/bin/python bench/scale_figures.py --dir /tmp/scale            # a few minutes, 2 GB of disk

Growth: 1,000 people x 30 days x 3 expense messages, written through the real Ingest (the same
transactions the webhook runs), then the file size after a checkpoint. 1 GB: the month copied
with new mids until the file passes --gigabytes, then `run.py backup` and a restore (`install`
copy + the integrity check) timed.
"""
import argparse
import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from expensebot import db as dbmod  # noqa: E402
from expensebot.identity import PsidHasher  # noqa: E402
from expensebot.ingest.spool import Spool  # noqa: E402
from expensebot.events import Message  # noqa: E402
from expensebot.ingest.write import Ingest  # noqa: E402
from expensebot.settings import Settings  # noqa: E402

TEXTS = ["coffee 3.20", "lunch 12,50 #food", "taxi 18 #transport", "groceries 56.80 #food",
         "bus 2.75", "dinner 42 #food", "phone bill 35", "sandwich 7", "gym 29.99 #health"]


def month_of_messages(people: int, days: int, per_day: int):
    hasher = PsidHasher("scale-figures-key-0123456789")
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    rng = random.Random(1)
    for day in range(days):
        for person in range(people):
            h = hasher(str(10**15 + person))
            for n in range(per_day):
                ms = start + day * 86_400_000 + (8 + n * 4) * 3_600_000 + rng.randrange(3_600_000)
                text = rng.choice(TEXTS)
                mid = f"m_{person}_{day}_{n}_" + "x" * 60  # real mids are ~90 characters
                event = json.dumps({"timestamp": ms, "message": {"mid": mid, "text": text}})
                yield Message(h, mid, "message", text, ms, ms + 300, event)


def growth(path: Path, people: int, days: int, per_day: int) -> dict:
    database = dbmod.Database(path).open()
    ingest = Ingest(database, Spool(Path(f"{path}.spool")).open(), Settings("USD", "UTC"), ai_enabled=False)
    batch, count, began = [], 0, time.monotonic()
    for message in month_of_messages(people, days, per_day):
        batch.append(message)
        if len(batch) == 200:
            count += len(ingest.write(batch))
            batch = []
    if batch:
        count += len(ingest.write(batch))
    seconds = time.monotonic() - began
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = path.stat().st_size
    return {"people": people, "days": days, "messages": count, "bytes": size,
            "bytes_per_message": round(size / count), "write_seconds": round(seconds, 1)}


def grow_to(path: Path, gigabytes: float) -> dict:
    conn = sqlite3.connect(path, isolation_level=None)
    began, rounds = time.monotonic(), 0
    while path.stat().st_size < gigabytes * 1e9:
        rounds += 1
        conn.execute("BEGIN")
        top = conn.execute("SELECT max(id) FROM messages_raw").fetchone()[0]
        conn.execute("INSERT INTO messages_raw (psid_hash, mid, received_at, sent_at, kind, text, event) "
                      "SELECT psid_hash, mid || ?, received_at, sent_at, kind, text, event FROM messages_raw "
                      "WHERE id <= ? AND id > ? - 90000", (f"-{rounds}", top, top))
        conn.execute("INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, "
                     "description, category, category_source, occurred_at, created_at) "
                     "SELECT id, m.psid_hash, m.mid, 0, 1000, 'USD', 'coffee', NULL, NULL, sent_at, received_at "
                     "FROM messages_raw m WHERE id > ?", (top,))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = conn.execute("SELECT count(*) FROM messages_raw").fetchone()[0]
    conn.close()
    return {"bytes": path.stat().st_size, "messages": rows, "grow_seconds": round(time.monotonic() - began)}


def timed(command: list[str], env: dict | None = None) -> float:
    began = time.monotonic()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return round(time.monotonic() - began, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--people", type=int, default=1000)
    p.add_argument("--gigabytes", type=float, default=1.0)
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "scale.db"
    for leftover in [*args.dir.glob("scale*"), args.dir / "backups"]:
        subprocess.run(["rm", "-rf", str(leftover)], check=True)
    figures = {"growth": growth(path, args.people, 30, 3)}
    print(json.dumps(figures), flush=True)
    figures["big"] = grow_to(path, args.gigabytes)
    print(json.dumps(figures), flush=True)
    env = {"PATH": "/usr/bin:/bin", "EXPENSEBOT_DB": str(path)}
    backup = args.dir / "backups" / "scale-backup.db"
    figures["backup_seconds"] = timed([sys.executable, str(ROOT / "run.py"), "backup", str(backup)], env)
    restored = args.dir / "scale-restored.db"
    figures["restore_copy_seconds"] = timed(["install", "-m", "600", str(backup), str(restored)])
    figures["integrity_check_seconds"] = timed(["sqlite3", str(restored), "PRAGMA quick_check"])
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
