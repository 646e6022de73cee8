:root {
  color-scheme: light dark;
  --bg: #f4f5f8; --card: #ffffff; --ink: #1d2330; --muted: #5d6675; --line: #e2e5ea;
  --accent: #3567d6; --good: #2f8f55; --bad: #c93c3c; --near: #e0a100; --near-ink: #8a6200;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #111419; --card: #1a1f27; --ink: #e7eaef; --muted: #9ca5b4; --line: #2b323d;
          --accent: #7ea6ff; --good: #57c07f; --bad: #ff7b7b;
          --near: #f0b429; --near-ink: #f0b429; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 760px; margin: 0 auto; padding: 0 14px; }
nav { display: grid; grid-template-columns: 1fr auto 1fr; align-items: center; gap: 8px; padding: 18px 0 6px; }
h1 { margin: 0; font-size: 1.4rem; text-align: center; white-space: nowrap; }
h2 { margin: 0 0 12px; font-size: 1.05rem; }
a { color: var(--accent); }
.step { font-weight: 600; text-decoration: none; padding: 8px 0; white-space: nowrap; }
.step.next { text-align: right; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 16px;
        margin: 12px 0; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 12px 0; }
.totals .card { margin: 0; }
.sum { font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.sum .code { font-size: 0.6em; font-weight: 600; color: var(--muted); }
.caption, .muted { color: var(--muted); font-size: 0.9rem; }
.caption { margin: 6px 0 0; }
.empty { text-align: center; color: var(--muted); }
.chart { display: block; overflow: visible; }
.chart text { fill: var(--ink); font-size: 14px; }
.chart .amount { font-variant-numeric: tabular-nums; }
.chart .tick { fill: var(--muted); font-size: 12px; }
.track { fill: var(--line); }
.axis { stroke: var(--line); stroke-width: 1; }
.day { fill: var(--accent); }
.within { fill: var(--good); }
.near { fill: var(--near); }
.over { fill: var(--bad); }
.caption.over { color: var(--bad); font-weight: 600; }
.caption.near { color: var(--near-ink); font-weight: 600; }
.tone-none { fill: #9aa1ab; }
.tone0 { fill: #4e79a7; } .tone1 { fill: #f28e2b; } .tone2 { fill: #e15759; } .tone3 { fill: #76b7b2; }
.tone4 { fill: #59a14f; } .tone5 { fill: #edc948; } .tone6 { fill: #b07aa1; } .tone7 { fill: #ff9da7; }
.budget + .budget { margin-top: 14px; }
.budget .line { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0 8px; margin: 0 0 6px; }
.list { width: 100%; border-collapse: collapse; }
.list th { color: var(--muted); font-size: 0.85rem; font-weight: 600; text-align: left; }
.list th, .list td { padding: 8px 4px; border-bottom: 1px solid var(--line); vertical-align: top; }
.list tr:last-child td { border-bottom: 0; }
.list .date { white-space: nowrap; color: var(--muted); }
.list .what { overflow-wrap: anywhere; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.list th.num { text-align: right; }
.tag { display: inline-block; color: var(--muted); font-size: 0.85rem; }
.list .note { display: block; white-space: normal; color: var(--muted); font-size: 0.85rem; }
.converted-total { margin: 4px 0 0; }
.source a { color: inherit; }
footer { padding-bottom: 28px; }
.button { display: inline-block; padding: 11px 18px; border-radius: 10px; background: var(--accent); color: #fff;
          font-weight: 600; text-decoration: none; }
@media (prefers-color-scheme: dark) { .button { color: #0d1117; } }
.actions { margin: 4px 0 12px; }
@media (max-width: 380px) { h1 { font-size: 1.2rem; } .step { font-size: 0.9rem; } }
@media (min-width: 900px) {
  header, main, footer { max-width: 1040px; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; align-items: start; }
  .pair .card { margin: 0 0 12px; }
}
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
           clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
