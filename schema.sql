-- expensebot schema. Idempotent: run on every start (expensebot.db.init).
-- Times are ISO-8601 UTC text, 'YYYY-MM-DDTHH:MM:SS.mmmZ', so they sort and compare as strings.
-- Identity is psid_hash (HMAC-SHA256 of the PSID); the raw PSID is never stored.

-- One row per received message event (text, quick reply, postback, attachment).
CREATE TABLE IF NOT EXISTS messages_raw (
    id          INTEGER PRIMARY KEY,
    psid_hash   TEXT    NOT NULL,
    mid         TEXT    NOT NULL,
    received_at TEXT    NOT NULL,            -- server clock when the webhook arrived
    sent_at     TEXT    NOT NULL,            -- the event's own timestamp
    kind        TEXT    NOT NULL,            -- message | quick_reply | postback
    text        TEXT,                        -- what the bot read: text, or the quick reply / postback payload
    edit_count  INTEGER NOT NULL DEFAULT 0,  -- message_edit num_edit applied so far
    event       TEXT    NOT NULL             -- the event as received, sender and recipient removed (JSON)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_raw_psid_hash_mid
    ON messages_raw (psid_hash, mid);

-- One row per expense line of a message.
CREATE TABLE IF NOT EXISTS expenses (
    id              INTEGER PRIMARY KEY,
    psid_hash       TEXT    NOT NULL,
    mid             TEXT    NOT NULL,
    line            INTEGER NOT NULL,        -- 0-based line of the message text
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 1000000000000),
    currency        TEXT    NOT NULL CHECK (length(currency) = 3),
    description     TEXT    NOT NULL,
    category        TEXT,
    category_source TEXT    CHECK (category_source IN ('user', 'rule', 'ai')),
    occurred_at     TEXT    NOT NULL,        -- from the event timestamp (or the date the person wrote)
    created_at      TEXT    NOT NULL,
    UNIQUE (psid_hash, mid, line),
    FOREIGN KEY (psid_hash, mid) REFERENCES messages_raw (psid_hash, mid) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS expenses_psid_hash_occurred_at
    ON expenses (psid_hash, occurred_at);

-- The enrichment queue: one job per message, written in the same transaction (an outbox).
CREATE TABLE IF NOT EXISTS jobs (
    id         INTEGER PRIMARY KEY,
    psid_hash  TEXT    NOT NULL,
    mid        TEXT    NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'ok', 'error', 'skipped')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    run_after  TEXT    NOT NULL,             -- not picked up before this time
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    UNIQUE (psid_hash, mid),
    FOREIGN KEY (psid_hash, mid) REFERENCES messages_raw (psid_hash, mid) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS jobs_pending
    ON jobs (run_after) WHERE status = 'pending';
