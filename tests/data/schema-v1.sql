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
    id INTEGER PRIMARY KEY,
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

-- expenses: one row per expense of a message (message_id = messages_raw.id; line: its place among
--   the message's expenses, 0-based: 'coffee 4.50 lunch 12' is two on one text line).
--   occurred_at      from the event timestamp, or noon of the date the person wrote
--   category_source  user (#tag) | rule (keyword rules) | ai
CREATE TABLE IF NOT EXISTS expenses (
    id INTEGER PRIMARY KEY,
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
    UNIQUE (message_id, line)
);

-- Summaries read one person's rows in a time range; the index holds every column they sum,
-- so a summary never visits the table (flat latency as the table grows).
CREATE INDEX IF NOT EXISTS expenses_psid_hash_occurred_at
    ON expenses (psid_hash, occurred_at, currency, category, amount_minor);

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
--   currency  ISO 4217 code
--   timezone  IANA zone name
CREATE TABLE IF NOT EXISTS people (
    psid_hash TEXT PRIMARY KEY,
    currency TEXT,
    timezone TEXT,
    updated_at TEXT NOT NULL
);

-- budgets: monthly budgets in the person's currency and zone.
--   category  '' for everything, else a category name (lowercase)
CREATE TABLE IF NOT EXISTS budgets (
    psid_hash TEXT NOT NULL,
    category TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (psid_hash, category)
);

-- rejected_events: events that can never be stored (a value out of range, a constraint broken),
-- kept with the reason so the rest of their delivery is stored and acknowledged.
--   event  the event as received, sender and recipient removed (JSON)
CREATE TABLE IF NOT EXISTS rejected_events (
    id INTEGER PRIMARY KEY,
    psid_hash TEXT,
    mid TEXT,
    event TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);

-- erasures: people who erased their data; the only table that keeps a psid_hash after that.
-- Events older than erased_at are never stored again, and a redelivered confirmation erases nothing.
CREATE TABLE IF NOT EXISTS erasures (
    psid_hash TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL
);
