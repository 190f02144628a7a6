-- authvault format 5: the quota ledger. Budgets, reservations with the
-- usage committed against them, and the threshold notices given. Only
-- numbers, ids, names and timestamps: nothing here is sealed (see
-- SECURITY.md). Times are in the vault's one form (UTC, six fractional
-- digits, `Z`), so text comparison is time comparison.

CREATE TABLE quota_budgets (
    id          INTEGER PRIMARY KEY,
    scope       TEXT    NOT NULL CHECK (scope IN ('account', 'provider', 'agent')),
    account_id  INTEGER REFERENCES accounts (id) ON DELETE CASCADE,  -- scope 'account' only
    subject     TEXT    NOT NULL,             -- account id (decimal), provider name or agent id
    unit        TEXT    NOT NULL CHECK (unit IN ('tokens', 'usd', 'requests')),
    period      TEXT    NOT NULL CHECK (period IN ('minute', '5h', 'day', 'week', 'month')),
    limit_value INTEGER NOT NULL CHECK (limit_value >= 0),  -- tokens, requests, or micro-dollars
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    CHECK ((scope = 'account') = (account_id IS NOT NULL)),
    UNIQUE (scope, subject, unit, period)
) STRICT;

-- One row per reservation; a commit fills in the usage. A row whose state
-- is still 'open' after `expires_at` counts as released.
CREATE TABLE quota_reservations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,  -- the reservation id; never reused
    account_id         INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    provider           TEXT    NOT NULL,
    agent              TEXT,
    tokens             INTEGER NOT NULL CHECK (tokens >= 0),   -- reserved
    created_at         TEXT    NOT NULL,
    expires_at         TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('open', 'committed', 'released')),
    ended_at           TEXT,                                   -- when committed or released
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cache_read_tokens  INTEGER,
    cache_write_tokens INTEGER,
    used_tokens        INTEGER,                                -- the sum of the four
    usd_micros         INTEGER,                                -- cost given by the caller, if any
    model              TEXT
) STRICT;
-- Per scope column: open reservations by expiry, committed usage by commit
-- time, and every reservation by creation time (requests budgets).
CREATE INDEX quota_open_account ON quota_reservations (account_id, expires_at) WHERE state = 'open';
CREATE INDEX quota_open_provider ON quota_reservations (provider, expires_at) WHERE state = 'open';
CREATE INDEX quota_open_agent ON quota_reservations (agent, expires_at) WHERE state = 'open';
CREATE INDEX quota_committed_account ON quota_reservations (account_id, ended_at) WHERE state = 'committed';
CREATE INDEX quota_committed_provider ON quota_reservations (provider, ended_at) WHERE state = 'committed';
CREATE INDEX quota_committed_agent ON quota_reservations (agent, ended_at) WHERE state = 'committed';
CREATE INDEX quota_created_account ON quota_reservations (account_id, created_at);
CREATE INDEX quota_created_provider ON quota_reservations (provider, created_at);
CREATE INDEX quota_created_agent ON quota_reservations (agent, created_at);

-- A budget crossing 80 % or 95 %, noticed once per window.
CREATE TABLE quota_notices (
    id          INTEGER PRIMARY KEY,
    budget_id   INTEGER NOT NULL REFERENCES quota_budgets (id) ON DELETE CASCADE,
    threshold   INTEGER NOT NULL CHECK (threshold IN (80, 95)),
    level       INTEGER NOT NULL,             -- used + reserved when noticed
    limit_value INTEGER NOT NULL,
    at          TEXT    NOT NULL
) STRICT;
CREATE INDEX quota_notices_budget ON quota_notices (budget_id, threshold, at);
