-- authvault format 2: vault settings (provider preferences) and the
-- selection history (which account served which task, and why).

CREATE TABLE settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,                 -- JSON value
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE selection_history (
    id           INTEGER PRIMARY KEY,
    at           TEXT    NOT NULL,
    origin       TEXT    NOT NULL CHECK (origin IN ('import', 'selector')),
    task_type    TEXT,
    strategy     TEXT,
    provider     TEXT,
    account_id   INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    reason       TEXT,
    candidates   TEXT,                        -- JSON: every candidate's score or exclusion reason
    task_context BLOB,                        -- sealed: free text describing the task
    dedupe_key   TEXT UNIQUE                  -- keyed fingerprint: an imported entry is recorded once
) STRICT;
CREATE INDEX selection_history_at ON selection_history (at);
