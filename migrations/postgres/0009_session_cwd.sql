-- authvault format 9 (PostgreSQL): the working directory of an agent
-- session, known only by a keyed fingerprint. Mirror of
-- migrations/0009_session_cwd.sql: the same ALTER TABLE and partial index.

ALTER TABLE agent_sessions ADD COLUMN cwd_fingerprint TEXT COLLATE "C";
CREATE INDEX agent_sessions_cwd ON agent_sessions (cwd_fingerprint)
    WHERE cwd_fingerprint IS NOT NULL;
