-- authvault format 9: the working directory of an agent session, known
-- only by a keyed fingerprint (like usage_files' paths), so that a Claude
-- Code run under `vault exec` can be attributed when no other session
-- worked in its directory at the same time. NULL for sessions granted
-- before format 9 or where the directory could not be read.

ALTER TABLE agent_sessions ADD COLUMN cwd_fingerprint TEXT;
CREATE INDEX agent_sessions_cwd ON agent_sessions (cwd_fingerprint)
    WHERE cwd_fingerprint IS NOT NULL;
