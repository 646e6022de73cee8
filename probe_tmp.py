import sys, datetime as dt
from expensebot import reading
from expensebot.settings import Settings
ms = int(dt.datetime(2026,11,29,8,tzinfo=dt.timezone.utc).timestamp()*1000)
cur = sys.argv[1] if len(sys.argv) > 1 else "USD"
for t in sys.stdin.read().split("\n"):
    if not t: continue
    r = reading.read(t, Settings(cur, "UTC"), ms)
    if r.command: out = f"CMD {r.command.name} {r.command.period and r.command.period} cat={r.command.category} cur={r.command.currency} tz={r.command.tz} amt={r.command.amount_minor} choices={r.command.choices} topic={r.command.topic}"
    else: out = f"EXP {[(e.amount_minor,e.currency,e.description) for e in r.expenses]} REJ {[(x.reason, x.choices[:2]) for x in r.parsed.rejected]}"
    print(f"{t!r:40} {out}")
