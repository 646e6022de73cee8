<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>{{title}} · Your expenses</title>
<link rel="stylesheet" href="../style.css">
</head>
<body>
<header>
<nav aria-label="Months">
% if previous:
<a class="step" href="?month={{previous}}" rel="prev">&larr; {{previous_label}}</a>
% else:
<span class="step"></span>
% end
<h1>{{title}}</h1>
% if next:
<a class="step next" href="?month={{next}}" rel="next">{{next_label}} &rarr;</a>
% else:
<span class="step"></span>
% end
</nav>
</header>
<main>
% if not blocks:
<p class="card empty">No expenses in {{title}}.</p>
% else:
<section class="totals" aria-label="Totals">
% for block in blocks:
<div class="card total">
<div class="caption">Spent in {{block.currency}}</div>
% number, code = block.total.rsplit(" ", 1)
<div class="sum">{{number}} <span class="code">{{code}}</span></div>
<div class="caption">{{block.count}} {{"expense" if block.count == 1 else "expenses"}}</div>
</div>
% end
</section>
<p class="actions"><a class="button" href="expenses.csv?month={{month}}" download>Download CSV</a></p>
% end
% if converted:
<div class="pair">
<section class="card" aria-label="All of it in {{converted.currency}}">
<h2>In {{converted.currency}} <span class="muted">converted</span></h2>
% if converted.count:
% number, code = converted.total.rsplit(" ", 1)
<p class="converted-total"><span class="sum">&asymp; {{number}} <span class="code">{{code}}</span></span>
in all, at the ECB rate of each expense’s day</p>
<p class="caption">{{converted.count}} {{"expense" if converted.count == 1 else "expenses"}} in the total</p>
% end
% if converted.pending:
% waits = "expense waits for its" if converted.pending == 1 else "expenses wait for their"
<p class="caption">{{converted.pending}} {{waits}} rate, and will be added when it is published.</p>
% end
% for unconverted in converted.unconverted:
<p class="caption">{{unconverted}} is not in the total: the ECB publishes no rate for it.</p>
% end
<p class="caption source">Source: <a href="{{rates_source_url}}" rel="noopener noreferrer">{{rates_source}}</a></p>
</section>
% if converted.categories:
<section class="card">
<h2>By category <span class="muted">{{converted.currency}}, converted</span></h2>
<svg class="chart bars" width="100%" height="{{len(converted.categories) * 44}}" aria-hidden="true" focusable="false">
% for row, bar in enumerate(converted.categories):
<text x="0" y="{{row * 44 + 15}}" class="label">{{bar.label}}</text>
<text x="100%" y="{{row * 44 + 15}}" class="amount" text-anchor="end">{{bar.amount}}</text>
<rect x="0" y="{{row * 44 + 22}}" width="100%" height="12" rx="6" class="track"/>
<rect x="0" y="{{row * 44 + 22}}" width="{{bar.percent}}%" height="12" rx="6" class="{{bar.tone}}"/>
% end
</svg>
<table class="sr-only">
<caption>Spending by category converted to {{converted.currency}}, {{title}}</caption>
<thead><tr><th scope="col">Category</th><th scope="col">Amount</th></tr></thead>
<tbody>
% for bar in converted.categories:
<tr><td>{{bar.name}}</td><td>{{bar.amount}}</td></tr>
% end
</tbody>
</table>
<p class="caption source">Source: <a href="{{rates_source_url}}" rel="noopener noreferrer">{{rates_source}}</a></p>
</section>
% end
</div>
% end
% for block in blocks:
<div class="pair">
<section class="card">
<h2>By category <span class="muted">{{block.currency}}</span></h2>
<svg class="chart bars" width="100%" height="{{len(block.categories) * 44}}" aria-hidden="true" focusable="false">
% for row, bar in enumerate(block.categories):
<text x="0" y="{{row * 44 + 15}}" class="label">{{bar.label}}</text>
<text x="100%" y="{{row * 44 + 15}}" class="amount" text-anchor="end">{{bar.amount}}</text>
<rect x="0" y="{{row * 44 + 22}}" width="100%" height="12" rx="6" class="track"/>
<rect x="0" y="{{row * 44 + 22}}" width="{{bar.percent}}%" height="12" rx="6" class="{{bar.tone}}"/>
% end
</svg>
<table class="sr-only">
<caption>Spending by category in {{block.currency}}, {{title}}</caption>
<thead><tr><th scope="col">Category</th><th scope="col">Amount</th></tr></thead>
<tbody>
% for bar in block.categories:
<tr><td>{{bar.name}}</td><td>{{bar.amount}}</td></tr>
% end
</tbody>
</table>
</section>
<section class="card">
<h2>Per day <span class="muted">{{block.currency}}</span></h2>
<svg class="chart days" width="100%" height="{{day_chart_bottom + 24}}" aria-hidden="true" focusable="false">
<line x1="0" x2="100%" y1="{{day_chart_bottom}}" y2="{{day_chart_bottom}}" class="axis"/>
% for column in block.days:
% if column.height:
<rect x="{{column.x}}%" y="{{column.y}}" width="{{column.width}}%" height="{{column.height}}" rx="2" class="day"/>
% end
% end
% for day, x in block.day_ticks:
<text x="{{x}}%" y="{{day_chart_bottom + 18}}" text-anchor="middle" class="tick">{{day}}</text>
% end
</svg>
<p class="caption">Highest day: {{block.highest_day}}</p>
<table class="sr-only">
<caption>Spending per day in {{block.currency}}, {{title}}</caption>
<thead><tr><th scope="col">Day</th><th scope="col">Amount</th></tr></thead>
<tbody>
% for column in block.days:
% if column.height:
<tr><td>{{column.day}}</td><td>{{column.amount}}</td></tr>
% end
% end
</tbody>
</table>
</section>
</div>
% end
% if budgets:
<section class="card">
<h2>Budgets</h2>
% for budget in budgets:
<div class="budget">
<p class="line"><span><bdi>{{budget.label}}</bdi></span> <span class="num">{{budget.spent}} of {{budget.limit}}</span></p>
<svg class="chart meter" width="100%" height="12" aria-hidden="true" focusable="false">
<rect x="0" y="0" width="100%" height="12" rx="6" class="track"/>
<rect x="0" y="0" width="{{budget.percent}}%" height="12" rx="6" class="{{budget.state}}"/>
</svg>
<p class="caption {{budget.state}}">{{budget.used}}% used{{", over by " + budget.over if budget.over else ""}}</p>
</div>
% end
</section>
% end
% if listed:
<section class="card">
<h2>Expenses <span class="muted">{{count}}</span></h2>
<table class="list">
<thead><tr><th scope="col">Date</th><th scope="col">What</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>
% for item in listed:
<tr><td class="date">{{item.date}}</td><td class="what"><bdi>{{item.description}}</bdi>
% if item.category:
<span class="tag">#<bdi>{{item.category}}</bdi></span>
% end
% if item.recurring:
<span class="tag">{{item.recurring}}</span>
% end
</td><td class="num">{{item.amount}}\\
% if item.converted:
<span class="note">{{item.converted}}</span>\\
% end
</td></tr>
% end
</tbody>
</table>
% if listed_converted:
<p class="caption source">Converted amounts: <a href="{{rates_source_url}}" rel="noopener noreferrer">{{rates_source}}</a></p>
% end
% if unlisted:
<p class="caption">{{unlisted}} earlier expenses are in the CSV.</p>
% end
</section>
% end
</main>
<footer>
<p class="caption">This page is yours alone. Its link stops working 24 hours after the bot sent it; type “report” in the chat for a new one.</p>
</footer>
</body>
</html>
