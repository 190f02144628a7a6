-- authvault format 7: agent sessions, and what a selection led to.
-- Every grant handed to an agent (`vault exec`, `vault env`) is a session:
-- which process holds it, on which account, with which reservation. Only
-- numbers, ids, names and timestamps: nothing here is sealed (see
-- SECURITY.md). Times are in the vault's one form.

CREATE TABLE agent_sessions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
    agent          TEXT    NOT NULL,
    account_id     INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('exec', 'env')),
    pid            INTEGER NOT NULL,
    pid_start      INTEGER,                 -- start time in clock ticks since boot: guards against pid reuse
    host           TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    last_seen      TEXT    NOT NULL,
    ended_at       TEXT,
    end_reason     TEXT CHECK (end_reason IN ('exited', 'process gone')),
    exit_status    INTEGER,
    reservation_id INTEGER REFERENCES quota_reservations (id),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
) STRICT;
CREATE INDEX agent_sessions_live ON agent_sessions (started_at) WHERE ended_at IS NULL;

-- A selection made for a grant: the agent, whether it was granted or the
-- chosen account failed (and why), and the reservation and session it led to.
ALTER TABLE selection_history ADD COLUMN agent TEXT;
ALTER TABLE selection_history ADD COLUMN outcome TEXT;
ALTER TABLE selection_history ADD COLUMN reservation_id INTEGER REFERENCES quota_reservations (id);
ALTER TABLE selection_history ADD COLUMN session_id INTEGER REFERENCES agent_sessions (id);
