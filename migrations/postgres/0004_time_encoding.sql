-- authvault format 4 (PostgreSQL): one encoding for every time column.
-- Mirror of migrations/0004_time_encoding.sql, which only re-encodes data
-- and changes no schema. A PostgreSQL vault is always created at the newest
-- format, so these tables are empty when this runs and it changes nothing;
-- it is kept as the plain PostgreSQL equivalent (SQLite's `substr(x, -1, 1)`,
-- the last character, is `right(x, 1)` here) so that both backends give
-- format 4 the same meaning.
--
-- Every time is UTC, RFC 3339, six fractional digits, `Z`
-- (`2026-11-30T13:03:33.353193Z`, 27 characters), so text order is time
-- order: no fraction -> `.000000`, a shorter one padded, a longer one cut to
-- microseconds; values never in the RFC 3339 `Z` form are left alone.

UPDATE credentials SET expires_at = CASE
        WHEN substr(expires_at, 20, 1) = 'Z' AND length(expires_at) = 20
            THEN substr(expires_at, 1, 19) || '.000000Z'
        WHEN substr(expires_at, 20, 1) = '.' AND right(expires_at, 1) = 'Z'
            THEN substr(expires_at, 1, 20)
                 || substr(substr(expires_at, 21, length(expires_at) - 21) || '000000', 1, 6)
                 || 'Z'
        ELSE expires_at
    END
WHERE expires_at IS NOT NULL AND length(expires_at) <> 27;

UPDATE credentials SET last_refresh = CASE
        WHEN substr(last_refresh, 20, 1) = 'Z' AND length(last_refresh) = 20
            THEN substr(last_refresh, 1, 19) || '.000000Z'
        WHEN substr(last_refresh, 20, 1) = '.' AND right(last_refresh, 1) = 'Z'
            THEN substr(last_refresh, 1, 20)
                 || substr(substr(last_refresh, 21, length(last_refresh) - 21) || '000000', 1, 6)
                 || 'Z'
        ELSE last_refresh
    END
WHERE last_refresh IS NOT NULL AND length(last_refresh) <> 27;
