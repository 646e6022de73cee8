-- expensebot schema. Idempotent: run on every start (expensebot.db.init).
-- Times are ISO-8601 UTC text, 'YYYY-MM-DDTHH:MM:SS.mmmZ', so they sort and compare as strings.
-- Identity is psid_hash (HMAC-SHA256 of the PSID); the raw PSID is never stored.
-- Comments stay outside the CREATE statements: SQLite keeps a statement's text in sqlite_schema
-- and every new connection (one per request) parses it again, so the schema is kept lean.

-- messages_raw: one row per received message event (text, quick reply, postback, attachment).
--   received_at  server clock when the webhook arrived
--   sent_at      the event's own timestamp
--   kind         message | quick_reply | postback | edit (an edit whose original we never saw)
--   text         what the bot read: the text, or the quick reply / postback payload
--   edit_count   the num_edit of the last message_edit applied
--   event        the event as received, sender and recipient removed (JSON)
CREATE TABLE IF NOT EXISTS messages_raw (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    psid_hash TEXT NOT NULL,
    mid TEXT NOT NULL,
    received_at TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT,
    edit_count INTEGER NOT NULL DEFAULT 0,
    event TEXT NOT NULL
);

-- Exactly once: a redelivered mid of the same person is ignored.
CREATE UNIQUE INDEX IF NOT EXISTS messages_raw_psid_hash_mid ON messages_raw (psid_hash, mid);

-- A person's messages in the order they were sent: `undo` and an erasure go by it.
CREATE INDEX IF NOT EXISTS messages_raw_psid_hash_sent_at ON messages_raw (psid_hash, sent_at);

-- Ids are AUTOINCREMENT throughout: an id is never given to a second row, so a late AI answer or
-- reply can never land on a row that took the place of an erased or edited one.

-- expenses: one row per expense of a message (message_id = messages_raw.id; line: its place among
--   the message's expenses, 0-based: 'coffee 4.50 lunch 12' is two on one text line).
--   occurred_at      from the event timestamp, or noon of the date the person wrote
--   category_source  user (#tag) | rule (keyword rules) | ai
--   converted_minor, converted_currency, rate, rate_day, rate_source: the amount in the person's
--     currency (docs/CURRENCIES.md): rate is units of converted_currency per unit of currency, of
--     the ECB's day rate_day; rate_source ecb | ecb-provisional (today's rate not published yet) |
--     person (their own @ rate) | same (already in their currency) | none (the ECB publishes no
--     rate for it: never converted); all NULL while the expense waits for its rate.
--   rule_id, due_date  an occurrence of a recurring rule (recurring_rules.id) and its due day
--     (YYYY-MM-DD, the person's zone); NULL for an expense a person wrote
--   announced_by       the messages_raw.id whose reply listed this occurrence ("Added: ...")
CREATE TABLE IF NOT EXISTS expenses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    psid_hash TEXT NOT NULL,
    mid TEXT NOT NULL,
    line INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 1000000000000),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT,
    category_source TEXT,
    occurred_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    converted_minor INTEGER,
    converted_currency TEXT,
    rate TEXT,
    rate_day TEXT,
    rate_source TEXT,
    rule_id INTEGER,
    due_date TEXT,
    announced_by INTEGER,
    UNIQUE (message_id, line)
);

-- Exactly once: each due date of each recurring rule is one expense, however often the scheduler
-- runs, crashes or catches up.
CREATE UNIQUE INDEX IF NOT EXISTS expenses_rule_id_due_date ON expenses (rule_id, due_date)
    WHERE rule_id IS NOT NULL;

-- What the next reply of a person announces: occurrences no reply has listed yet.
CREATE INDEX IF NOT EXISTS expenses_to_announce ON expenses (psid_hash)
    WHERE rule_id IS NOT NULL AND announced_by IS NULL;

-- recurring_rules: a person's recurring expenses ('rent 1200 monthly'), one per message that made
-- one (message_id: a redelivered message makes no second rule). Each due date becomes one row of
-- expenses (rule_id, due_date; line: its number), dated noon of the due day in the person's zone.
--   period        daily | weekly | monthly | yearly
--   start_date    'since', else the day the message was sent (the person's zone), YYYY-MM-DD
--   anchor_day    the day of the month of a monthly or yearly rule (shorter months: their last day)
--   next_number   the number of the first due date not made yet (0: the first); next_due its date
--   created_at    when the message that made it was sent
--   stopped_on    the person's day of 'stop': due dates after it are never made; NULL while active
CREATE TABLE IF NOT EXISTS recurring_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    psid_hash TEXT NOT NULL,
    message_id INTEGER NOT NULL UNIQUE,
    mid TEXT NOT NULL,
    description TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 1000000000000),
    currency TEXT NOT NULL,
    category TEXT,
    category_source TEXT,
    period TEXT NOT NULL,
    start_date TEXT NOT NULL,
    anchor_day INTEGER NOT NULL,
    next_number INTEGER NOT NULL DEFAULT 0,
    next_due TEXT NOT NULL,
    created_at TEXT NOT NULL,
    stopped_on TEXT,
    stopped_at TEXT
);

CREATE INDEX IF NOT EXISTS recurring_rules_next_due ON recurring_rules (next_due);
CREATE INDEX IF NOT EXISTS recurring_rules_psid_hash ON recurring_rules (psid_hash);

-- Summaries read one person's rows in a time range; the index holds every column they sum,
-- so a summary never visits the table (flat latency as the table grows).
CREATE INDEX IF NOT EXISTS expenses_psid_hash_occurred_at
    ON expenses (psid_hash, occurred_at, currency, category, amount_minor, converted_currency, converted_minor);

-- The few expenses at a person's own rate ('@ 0.0062'), which a summary counts apart.
CREATE INDEX IF NOT EXISTS expenses_own_rates ON expenses (psid_hash, occurred_at) WHERE rate_source = 'person';

-- What the converter looks at: expenses waiting for their rate, or converted provisionally.
CREATE INDEX IF NOT EXISTS expenses_to_convert ON expenses (psid_hash)
    WHERE rate_source IS NULL OR rate_source = 'ecb-provisional';

-- expense_days: each person's expenses summed per UTC day, currency, category ('' for none) and
-- the currency they are converted to ('' while waiting for a rate), kept by these triggers in the
-- same transaction as every change to expenses, the sqlite3 CLI's too (there, change rows with
-- UPDATE and DELETE: a REPLACE runs the delete trigger only with PRAGMA recursive_triggers = ON,
-- which the bot's own connections set). A summary of a long period adds up its whole days here
-- and reads only the rows of the part-days at its ends.
--   converted_minor  the sum of the converted amounts; converted_count: how many have one
CREATE TABLE IF NOT EXISTS expense_days (
    psid_hash TEXT NOT NULL,
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    category TEXT NOT NULL,
    converted_currency TEXT NOT NULL,
    total_minor INTEGER NOT NULL,
    count INTEGER NOT NULL,
    converted_minor INTEGER NOT NULL,
    converted_count INTEGER NOT NULL,
    PRIMARY KEY (psid_hash, day, currency, category, converted_currency)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS expense_days_add AFTER INSERT ON expenses BEGIN
    INSERT INTO expense_days
    VALUES (new.psid_hash, substr(new.occurred_at, 1, 10), new.currency, coalesce(new.category, ''),
            coalesce(new.converted_currency, ''), new.amount_minor, 1, coalesce(new.converted_minor, 0),
            new.converted_minor IS NOT NULL)
    ON CONFLICT DO UPDATE SET total_minor = total_minor + excluded.total_minor, count = count + 1,
        converted_minor = converted_minor + excluded.converted_minor,
        converted_count = converted_count + excluded.converted_count;
END;

CREATE TRIGGER IF NOT EXISTS expense_days_remove AFTER DELETE ON expenses BEGIN
    UPDATE expense_days SET total_minor = total_minor - old.amount_minor, count = count - 1,
        converted_minor = converted_minor - coalesce(old.converted_minor, 0),
        converted_count = converted_count - (old.converted_minor IS NOT NULL)
    WHERE psid_hash = old.psid_hash AND day = substr(old.occurred_at, 1, 10) AND currency = old.currency
    AND category = coalesce(old.category, '') AND converted_currency = coalesce(old.converted_currency, '');
    DELETE FROM expense_days
    WHERE psid_hash = old.psid_hash AND day = substr(old.occurred_at, 1, 10) AND currency = old.currency
    AND category = coalesce(old.category, '') AND converted_currency = coalesce(old.converted_currency, '')
    AND count = 0;
END;

CREATE TRIGGER IF NOT EXISTS expense_days_change
AFTER UPDATE OF psid_hash, occurred_at, currency, category, amount_minor, converted_currency, converted_minor
ON expenses BEGIN
    UPDATE expense_days SET total_minor = total_minor - old.amount_minor, count = count - 1,
        converted_minor = converted_minor - coalesce(old.converted_minor, 0),
        converted_count = converted_count - (old.converted_minor IS NOT NULL)
    WHERE psid_hash = old.psid_hash AND day = substr(old.occurred_at, 1, 10) AND currency = old.currency
    AND category = coalesce(old.category, '') AND converted_currency = coalesce(old.converted_currency, '');
    DELETE FROM expense_days
    WHERE psid_hash = old.psid_hash AND day = substr(old.occurred_at, 1, 10) AND currency = old.currency
    AND category = coalesce(old.category, '') AND converted_currency = coalesce(old.converted_currency, '')
    AND count = 0;
    INSERT INTO expense_days
    VALUES (new.psid_hash, substr(new.occurred_at, 1, 10), new.currency, coalesce(new.category, ''),
            coalesce(new.converted_currency, ''), new.amount_minor, 1, coalesce(new.converted_minor, 0),
            new.converted_minor IS NOT NULL)
    ON CONFLICT DO UPDATE SET total_minor = total_minor + excluded.total_minor, count = count + 1,
        converted_minor = converted_minor + excluded.converted_minor,
        converted_count = converted_count + excluded.converted_count;
END;

-- rates: the ECB's euro reference rates (docs/CURRENCIES.md), one row per publication day and
-- currency: 1 EUR = per_eur units of currency, as published (decimal text, never a float).
--   source  ecb
CREATE TABLE IF NOT EXISTS rates (
    day TEXT NOT NULL,
    currency TEXT NOT NULL,
    per_eur TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (day, currency)
) WITHOUT ROWID;

-- rate_refreshes: when the rates were last fetched, and what came of it (`expensebot rates`).
CREATE TABLE IF NOT EXISTS rate_refreshes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    url TEXT NOT NULL,
    outcome TEXT NOT NULL,
    newest_day TEXT,
    changed INTEGER NOT NULL DEFAULT 0
);

-- jobs: the enrichment queue, one row per message (message_id = messages_raw.id), written in the
-- same transaction as the message (an outbox).
--   status     pending | ok | error | skipped
--   run_after  not picked up before this time (backoff, rate limit)
CREATE TABLE IF NOT EXISTS jobs (
    message_id INTEGER PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    run_after TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (run_after) WHERE status = 'pending';

-- Views for the common questions from the sqlite3 CLI (docs/REFERENCE.md, Data).
-- daily_totals: per person, UTC day and currency (for another zone: date(occurred_at, '+8 hours')).
CREATE VIEW IF NOT EXISTS daily_totals AS
SELECT psid_hash, substr(occurred_at, 1, 10) AS day, currency,
       sum(amount_minor) AS total_minor, count(*) AS expenses
FROM expenses
GROUP BY psid_hash, day, currency;

-- enrichment_status: how many jobs are in each state, and since when.
CREATE VIEW IF NOT EXISTS enrichment_status AS
SELECT status, count(*) AS jobs, min(updated_at) AS oldest, max(updated_at) AS newest
FROM jobs
GROUP BY status;

-- job_details: every job with the message it enriches.
CREATE VIEW IF NOT EXISTS job_details AS
SELECT jobs.message_id, messages_raw.psid_hash, messages_raw.mid, messages_raw.text,
       jobs.status, jobs.attempts, jobs.last_error, jobs.run_after, jobs.updated_at
FROM jobs
JOIN messages_raw ON messages_raw.id = jobs.message_id;

-- people: a person's own settings (one row per psid_hash that changed one). NULL: the default
-- from EXPENSEBOT_CURRENCY / EXPENSEBOT_TZ.
--   currency     ISO 4217 code
--   timezone     IANA zone name
--   currency_at  when the message that set it was sent (a message sent earlier never overrides it)
--   timezone_at  likewise
--   digest       0: 'digest off' (no monthly digest); NULL or 1: on
--   digest_at    when the message that set it was sent (one sent earlier never overrides it)
CREATE TABLE IF NOT EXISTS people (
    psid_hash TEXT PRIMARY KEY,
    currency TEXT,
    timezone TEXT,
    updated_at TEXT NOT NULL,
    currency_at TEXT,
    timezone_at TEXT,
    digest INTEGER,
    digest_at TEXT
);

-- digests: the monthly digests given, one per person and month (the month summed up, 'YYYY-MM' in
-- the person's zone), written with INSERT OR IGNORE in the transaction of the message whose reply
-- carries it: exactly once, however often that message is redelivered.
--   sent_at  when that message was sent (an erasure removes the mark like the message)
CREATE TABLE IF NOT EXISTS digests (
    psid_hash TEXT NOT NULL,
    month TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (psid_hash, month)
) WITHOUT ROWID;

-- settings_log: every change of a person's settings, by when its message was sent, so that a
-- message is read with the settings of its own time however late it arrives (people holds the
-- latest of each).
--   setting  currency | timezone
CREATE TABLE IF NOT EXISTS settings_log (
    psid_hash TEXT NOT NULL,
    setting TEXT NOT NULL,
    set_at TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (psid_hash, setting, set_at)
) WITHOUT ROWID;

-- budgets: monthly budgets in the person's currency and zone.
--   category      '' for everything, else a category name (lowercase)
--   amount_minor  NULL: turned off ("budget food off"), kept so that a budget sent before that
--                 but delivered after it does not come back
--   updated_at    when the message that set it (or turned it off) was sent
CREATE TABLE IF NOT EXISTS budgets (
    psid_hash TEXT NOT NULL,
    category TEXT NOT NULL,
    amount_minor INTEGER CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (psid_hash, category)
);

-- rejected_events: events that can never be stored (a value out of range, a constraint broken),
-- kept with the reason so the rest of their delivery is stored and acknowledged.
--   sent_at  the event's own time, when it had one
--   event    the event as received, sender and recipient removed (JSON)
CREATE TABLE IF NOT EXISTS rejected_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    psid_hash TEXT,
    mid TEXT,
    sent_at TEXT,
    event TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);

-- A redelivered event that can never be stored is kept once.
CREATE UNIQUE INDEX IF NOT EXISTS rejected_events_psid_hash_mid ON rejected_events (psid_hash, mid);

-- erasures: people who erased their data; the only table that keeps a psid_hash after that.
--   erased_at  when the confirmation was sent: what was sent up to then is erased, and never
--              stored again; what was sent after it is kept, whenever it arrives.
CREATE TABLE IF NOT EXISTS erasures (
    psid_hash TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL
);

-- pending_replies: replies still queued when the bot stopped, sent after the restart while the
-- person's 24-hour window is open.
--   recipient  the PSID sealed (encrypted and authenticated, expensebot/identity.py) under a key
--              derived from PSID_HASH_KEY: never the PSID itself
--   message    the Send API message object (JSON)
--   sent_at    when the message it answers was sent (an erasure removes it like the message)
CREATE TABLE IF NOT EXISTS pending_replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    psid_hash TEXT NOT NULL,
    mid TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    queued_at TEXT NOT NULL
);

-- receipt_drafts: a photo of a receipt, from the message that brought it to what the person decided
-- (docs/CHAT.md, Receipt photos). One per photo message (message_id); the image itself is never kept.
--   status     pending (waiting to be read) | proposed (read; Save, Fix or Drop offered) | saved |
--              dropped (by the person, or 7 days unanswered) | unreadable (see reason)
--   url        where the photo is, until it is read (then NULL)
--   attempts, run_after  reading: tried again after a failed download or a crash
--   ocr_text   the text read, kept only while the draft is proposed (NULL after it is decided)
--   merchant, amount_minor, currency, receipt_date  what was read (receipt_date YYYY-MM-DD)
--   expense_id the expense Save made (expenses.message_id is the photo's message: once)
--   sent_at    when the photo was sent (an erasure removes it like the message)
--   told_at    when what was read went to the person: at once, or (the bot restarted in between and
--              no longer knew whom to answer) with the reply to their next message
CREATE TABLE IF NOT EXISTS receipt_drafts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    psid_hash TEXT NOT NULL,
    message_id INTEGER NOT NULL UNIQUE,
    mid TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'proposed', 'saved', 'dropped', 'unreadable')),
    url TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after TEXT NOT NULL,
    reason TEXT,
    ocr_text TEXT,
    merchant TEXT,
    amount_minor INTEGER,
    currency TEXT,
    receipt_date TEXT,
    expense_id INTEGER,
    sent_at TEXT NOT NULL,
    read_at TEXT,
    told_at TEXT,
    decided_at TEXT
);

CREATE INDEX IF NOT EXISTS receipt_drafts_waiting ON receipt_drafts (run_after) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS receipt_drafts_psid_hash ON receipt_drafts (psid_hash);
