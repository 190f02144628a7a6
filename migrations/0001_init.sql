-- authvault format 1: keys, accounts, credentials, audit log.
-- Sealed columns (BLOB) hold `version | key id | nonce | ciphertext | tag`,
-- bound to table, column, row and account; see SECURITY.md for every column.

CREATE TABLE vault_meta (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    vault_id     TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    root_secret  BLOB    NOT NULL,              -- sealed: source of the audit and fingerprint keys
    audit_seq    INTEGER NOT NULL DEFAULT 0,    -- last audit entry
    audit_head   BLOB    NOT NULL,              -- its MAC (32 zero bytes while empty)
    audit_anchor BLOB    NOT NULL               -- MAC over (audit_seq, audit_head): detects truncation
) STRICT;

CREATE TABLE unlock_methods (
    method      TEXT NOT NULL PRIMARY KEY CHECK (method IN ('keyring', 'passphrase')),
    kdf_params  TEXT,                           -- Argon2id parameters and salt (passphrase only)
    kek_check   BLOB NOT NULL,                  -- MAC of a constant under the KEK: wrong key vs corrupt wrap
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE data_keys (
    key_id      INTEGER NOT NULL PRIMARY KEY,
    created_at  TEXT    NOT NULL
) STRICT;

CREATE TABLE key_wraps (
    key_id   INTEGER NOT NULL REFERENCES data_keys (key_id) ON DELETE CASCADE,
    method   TEXT    NOT NULL REFERENCES unlock_methods (method) ON DELETE CASCADE,
    wrapped  BLOB    NOT NULL,                  -- the data key sealed under the method's KEK
    PRIMARY KEY (key_id, method)
) STRICT;

CREATE TABLE accounts (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT    NOT NULL CHECK (provider IN ('openai', 'claude')),
    label               TEXT    NOT NULL UNIQUE,
    kind                TEXT    NOT NULL CHECK (kind IN ('api_key', 'oauth')),  -- the active credential
    email               BLOB,                   -- sealed
    provider_account_id BLOB,                   -- sealed
    identity_fp         TEXT,                   -- keyed fingerprint of provider + provider account id
    email_fp            TEXT,                   -- keyed fingerprint of provider + e-mail
    plan                TEXT,
    rate_limit_tier     TEXT,
    priority            INTEGER NOT NULL DEFAULT 0,
    enabled             INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    needs_login         INTEGER NOT NULL DEFAULT 0 CHECK (needs_login IN (0, 1)),
    row_mac             BLOB,                   -- MAC over id, provider, label, kind, enabled: detects swaps
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
) STRICT;
CREATE INDEX accounts_identity_fp ON accounts (identity_fp);
CREATE INDEX accounts_email_fp ON accounts (email_fp);

CREATE TABLE credentials (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('api_key', 'oauth')),
    api_key       BLOB,                         -- sealed
    access_token  BLOB,                         -- sealed
    refresh_token BLOB,                         -- sealed
    id_token      BLOB,                         -- sealed
    secret_fp     TEXT,                         -- keyed fingerprint of the API key or refresh token
    expires_at    TEXT,
    scopes        TEXT,
    last_refresh  TEXT,
    generation    INTEGER NOT NULL DEFAULT 0,   -- bumped by every write of new tokens
    lease_holder  TEXT,                         -- refresh lease (single-flight refresh)
    lease_until   TEXT,
    updated_at    TEXT    NOT NULL,
    UNIQUE (account_id, kind)
) STRICT;
CREATE INDEX credentials_secret_fp ON credentials (secret_fp);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT    NOT NULL,
    uid        INTEGER NOT NULL,
    pid        INTEGER NOT NULL,
    exe        TEXT,
    agent_id   TEXT,
    action     TEXT    NOT NULL,
    account_id INTEGER,
    account    TEXT,                            -- label at the time
    outcome    TEXT    NOT NULL,
    details    TEXT,                            -- JSON; secrets only as keyed fingerprints
    mac        BLOB    NOT NULL                 -- HMAC(audit key, previous mac, this entry)
) STRICT;
