-- authvault format 8: usage history. One row per model response (from the
-- quota ledger, Claude Code and Codex logs, or an API caller), an hourly
-- rollup kept up to date by triggers in the same transaction as every
-- write, and how far each log file has been read. Project paths are sealed
-- (usage_projects.path); everything else is numbers, model and agent
-- names, session ids and timestamps (see SECURITY.md). Times are in the
-- vault's one form.

-- A project a usage event belongs to: a keyed fingerprint to group and
-- filter by, and the sealed text to show.
CREATE TABLE usage_projects (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT    NOT NULL UNIQUE,
    path        BLOB    NOT NULL
) STRICT;

-- Tokens in one meaning whatever the source: input excludes cache reads,
-- output includes reasoning (kept apart as well). Cost in pico-USD
-- (1e-12 USD), exact for every LiteLLM price.
CREATE TABLE usage_events (
    id                    INTEGER PRIMARY KEY,
    at                    TEXT    NOT NULL,
    provider              TEXT    NOT NULL,
    account_id            INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    model                 TEXT    NOT NULL,
    agent                 TEXT,
    task_type             TEXT,
    session               TEXT,
    project_id            INTEGER REFERENCES usage_projects (id),
    source                TEXT    NOT NULL CHECK (source IN ('ledger', 'claude-code', 'codex', 'api')),
    input_tokens          INTEGER NOT NULL CHECK (input_tokens >= 0),
    cache_read_tokens     INTEGER NOT NULL CHECK (cache_read_tokens >= 0),
    cache_write_5m_tokens INTEGER NOT NULL CHECK (cache_write_5m_tokens >= 0),
    cache_write_1h_tokens INTEGER NOT NULL CHECK (cache_write_1h_tokens >= 0),
    output_tokens         INTEGER NOT NULL CHECK (output_tokens >= 0),
    reasoning_tokens      INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
    cost_pusd             INTEGER NOT NULL CHECK (cost_pusd >= 0),
    price_version         TEXT,
    dedupe_key            TEXT    NOT NULL UNIQUE  -- keyed fingerprint of the event's identity
) STRICT;
CREATE INDEX usage_events_at ON usage_events (at);
CREATE INDEX usage_events_session ON usage_events (session, at);

-- Sums per UTC hour and dimension. Empty text and account 0 stand for
-- "none", so the primary key is total.
CREATE TABLE usage_hourly (
    hour                  TEXT    NOT NULL,  -- 'YYYY-MM-DDTHH', UTC
    provider              TEXT    NOT NULL,
    account_id            INTEGER NOT NULL,  -- 0: unattributed
    model                 TEXT    NOT NULL,
    source                TEXT    NOT NULL,
    agent                 TEXT    NOT NULL,
    task_type             TEXT    NOT NULL,
    events                INTEGER NOT NULL,
    input_tokens          INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cache_write_5m_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_pusd             INTEGER NOT NULL,
    PRIMARY KEY (hour, provider, account_id, model, source, agent, task_type)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER usage_hourly_insert AFTER INSERT ON usage_events BEGIN
    INSERT INTO usage_hourly VALUES (
        substr(NEW.at, 1, 13), NEW.provider, coalesce(NEW.account_id, 0), NEW.model, NEW.source,
        coalesce(NEW.agent, ''), coalesce(NEW.task_type, ''), 1,
        NEW.input_tokens, NEW.cache_read_tokens, NEW.cache_write_5m_tokens,
        NEW.cache_write_1h_tokens, NEW.output_tokens, NEW.reasoning_tokens, NEW.cost_pusd)
    ON CONFLICT DO UPDATE SET
        events = events + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
        cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
        cost_pusd = cost_pusd + excluded.cost_pusd;
END;

CREATE TRIGGER usage_hourly_delete AFTER DELETE ON usage_events BEGIN
    UPDATE usage_hourly SET
        events = events - 1,
        input_tokens = input_tokens - OLD.input_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        cache_write_5m_tokens = cache_write_5m_tokens - OLD.cache_write_5m_tokens,
        cache_write_1h_tokens = cache_write_1h_tokens - OLD.cache_write_1h_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens,
        cost_pusd = cost_pusd - OLD.cost_pusd
    WHERE hour = substr(OLD.at, 1, 13) AND provider = OLD.provider
      AND account_id = coalesce(OLD.account_id, 0) AND model = OLD.model AND source = OLD.source
      AND agent = coalesce(OLD.agent, '') AND task_type = coalesce(OLD.task_type, '');
    DELETE FROM usage_hourly
    WHERE hour = substr(OLD.at, 1, 13) AND provider = OLD.provider
      AND account_id = coalesce(OLD.account_id, 0) AND model = OLD.model AND source = OLD.source
      AND agent = coalesce(OLD.agent, '') AND task_type = coalesce(OLD.task_type, '')
      AND events = 0;
END;

-- An update (a better copy of an event, an account removed) moves the
-- old values out and the new ones in.
CREATE TRIGGER usage_hourly_update AFTER UPDATE ON usage_events BEGIN
    UPDATE usage_hourly SET
        events = events - 1,
        input_tokens = input_tokens - OLD.input_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        cache_write_5m_tokens = cache_write_5m_tokens - OLD.cache_write_5m_tokens,
        cache_write_1h_tokens = cache_write_1h_tokens - OLD.cache_write_1h_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        reasoning_tokens = reasoning_tokens - OLD.reasoning_tokens,
        cost_pusd = cost_pusd - OLD.cost_pusd
    WHERE hour = substr(OLD.at, 1, 13) AND provider = OLD.provider
      AND account_id = coalesce(OLD.account_id, 0) AND model = OLD.model AND source = OLD.source
      AND agent = coalesce(OLD.agent, '') AND task_type = coalesce(OLD.task_type, '');
    DELETE FROM usage_hourly
    WHERE hour = substr(OLD.at, 1, 13) AND provider = OLD.provider
      AND account_id = coalesce(OLD.account_id, 0) AND model = OLD.model AND source = OLD.source
      AND agent = coalesce(OLD.agent, '') AND task_type = coalesce(OLD.task_type, '')
      AND events = 0;
    INSERT INTO usage_hourly VALUES (
        substr(NEW.at, 1, 13), NEW.provider, coalesce(NEW.account_id, 0), NEW.model, NEW.source,
        coalesce(NEW.agent, ''), coalesce(NEW.task_type, ''), 1,
        NEW.input_tokens, NEW.cache_read_tokens, NEW.cache_write_5m_tokens,
        NEW.cache_write_1h_tokens, NEW.output_tokens, NEW.reasoning_tokens, NEW.cost_pusd)
    ON CONFLICT DO UPDATE SET
        events = events + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens,
        cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
        cost_pusd = cost_pusd + excluded.cost_pusd;
END;

-- How far each log file was read: identity (device and inode), size, and
-- where reading stops. The path is known only by
-- a keyed fingerprint.
CREATE TABLE usage_files (
    source      TEXT    NOT NULL CHECK (source IN ('claude-code', 'codex')),
    fingerprint TEXT    NOT NULL,
    device      INTEGER NOT NULL,
    inode       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    read_to     INTEGER NOT NULL,  -- byte offset just past the last complete line
    lines       INTEGER NOT NULL,  -- complete lines read up to offset
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (source, fingerprint)
) STRICT, WITHOUT ROWID;

-- A price table loaded with `vault usage prices load` (LiteLLM JSON, as
-- given); without a row the table built into the release is used.
CREATE TABLE usage_price_table (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    version   TEXT    NOT NULL,
    loaded_at TEXT    NOT NULL,
    body      TEXT    NOT NULL
) STRICT;
