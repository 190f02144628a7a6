-- authvault format 6: account health. One row per probe (`vault health`),
-- the newest 20 per account kept, and the cooldown an account is in after
-- a rate limit, an overload or a refused credential. Only outcomes,
-- numbers, HTTP statuses and timestamps: nothing here is sealed (see
-- SECURITY.md). Times are in the vault's one form (UTC, six fractional
-- digits, `Z`), so text comparison is time comparison.

CREATE TABLE account_health (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    probed_at   TEXT    NOT NULL,
    latency_ms  INTEGER NOT NULL CHECK (latency_ms >= 0),
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'rate_limited', 'overloaded',
                                                    'auth_failed', 'rejected', 'unreachable', 'timeout')),
    status      INTEGER,                      -- HTTP status of a failed probe, if any
    detail      TEXT                          -- short, non-secret words on a failure
) STRICT;
CREATE INDEX account_health_account ON account_health (account_id, probed_at);

-- At most one cooldown per account; a new one keeps the later `until`.
CREATE TABLE account_cooldowns (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    until       TEXT    NOT NULL,
    cause       TEXT    NOT NULL CHECK (cause IN ('rate_limited', 'overloaded', 'auth_failed')),
    set_at      TEXT    NOT NULL
) STRICT;
