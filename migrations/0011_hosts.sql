-- authvault format 11: unlock methods per host. One vault file (or database)
-- can serve many hosts; each host's OS keyring holds its own KEK, so a
-- keyring unlock method row and its wraps name their host. Host '' is the
-- only host of a vault made before this format, and always the passphrase's.
-- SQLite cannot change a primary key in place: both tables are rebuilt under
-- new names, filled, the old ones dropped (children first, so no cascade
-- fires) and the new ones renamed (SQLite rewrites the foreign key that
-- names the renamed parent).

CREATE TABLE unlock_methods_v11 (
    method      TEXT NOT NULL CHECK (method IN ('keyring', 'passphrase')),
    host        TEXT NOT NULL DEFAULT '' CHECK (method = 'keyring' OR host = ''),
    kdf_params  TEXT,                           -- Argon2id parameters and salt (passphrase only)
    kek_check   BLOB NOT NULL,                  -- MAC of a constant under the KEK: wrong key vs corrupt wrap
    created_at  TEXT NOT NULL,
    PRIMARY KEY (method, host)
) STRICT;

CREATE TABLE key_wraps_v11 (
    key_id   INTEGER NOT NULL REFERENCES data_keys (key_id) ON DELETE CASCADE,
    method   TEXT    NOT NULL,
    host     TEXT    NOT NULL DEFAULT '',
    wrapped  BLOB    NOT NULL,                  -- the data key sealed under the method's KEK
    PRIMARY KEY (key_id, method, host),
    FOREIGN KEY (method, host) REFERENCES unlock_methods_v11 (method, host) ON DELETE CASCADE
) STRICT;

INSERT INTO unlock_methods_v11 (method, host, kdf_params, kek_check, created_at)
    SELECT method, '', kdf_params, kek_check, created_at FROM unlock_methods;
INSERT INTO key_wraps_v11 (key_id, method, host, wrapped)
    SELECT key_id, method, '', wrapped FROM key_wraps;

DROP TABLE key_wraps;
DROP TABLE unlock_methods;
ALTER TABLE unlock_methods_v11 RENAME TO unlock_methods;
ALTER TABLE key_wraps_v11 RENAME TO key_wraps;
