-- authvault format 11 (PostgreSQL): unlock methods per host.
-- Mirror of migrations/0011_hosts.sql, without its table rebuild: the same
-- final tables through ALTER TABLE (host '' for every existing row). `host`
-- comes last here (ALTER TABLE appends); code addresses columns by name.

ALTER TABLE unlock_methods
    ADD COLUMN host TEXT COLLATE "C" NOT NULL DEFAULT '' CHECK (method = 'keyring' OR host = '');
ALTER TABLE key_wraps ADD COLUMN host TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE key_wraps DROP CONSTRAINT key_wraps_method_fkey;
ALTER TABLE key_wraps DROP CONSTRAINT key_wraps_pkey;
ALTER TABLE unlock_methods DROP CONSTRAINT unlock_methods_pkey;
ALTER TABLE unlock_methods ADD PRIMARY KEY (method, host);
ALTER TABLE key_wraps ADD PRIMARY KEY (key_id, method, host);
ALTER TABLE key_wraps ADD FOREIGN KEY (method, host)
    REFERENCES unlock_methods (method, host) ON DELETE CASCADE;
