-- authvault format 3: subscription / rate-limit snapshots per account.
-- Only normalized numbers and timestamps are kept; raw provider payloads are not stored.

CREATE TABLE subscription_snapshots (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    fetched_at  TEXT    NOT NULL,
    source      TEXT    NOT NULL,             -- headers | usage_endpoint | profile_endpoint | id_token
    snapshot    TEXT    NOT NULL              -- JSON: plan, status, windows (utilization %, resets_at), credits
) STRICT;
CREATE INDEX subscription_snapshots_account ON subscription_snapshots (account_id, fetched_at);
