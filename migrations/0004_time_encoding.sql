-- authvault format 4: one encoding for every time column.
--
-- Every time is UTC, RFC 3339, six fractional digits, `Z`
-- (`2026-11-30T13:03:33.353193Z`, 27 characters), so text order is time
-- order. Format 3 wrote `credentials.expires_at` and `last_refresh` with as
-- many fractional digits as the time had (none, 3, 6 or 9); every other
-- time column was already in the one form. This rewrites those two columns:
-- no fraction -> `.000000`, a shorter one padded, a longer one cut to
-- microseconds. Values that were never in the RFC 3339 `Z` form are left
-- alone, and reading them is an integrity error naming the row.
-- `audit_log.at` is not touched: it was always in the one form, and the
-- audit MACs cover its text.

UPDATE credentials SET expires_at = CASE
        WHEN substr(expires_at, 20, 1) = 'Z' AND length(expires_at) = 20
            THEN substr(expires_at, 1, 19) || '.000000Z'
        WHEN substr(expires_at, 20, 1) = '.' AND substr(expires_at, -1, 1) = 'Z'
            THEN substr(expires_at, 1, 20)
                 || substr(substr(expires_at, 21, length(expires_at) - 21) || '000000', 1, 6)
                 || 'Z'
        ELSE expires_at
    END
WHERE expires_at IS NOT NULL AND length(expires_at) <> 27;

UPDATE credentials SET last_refresh = CASE
        WHEN substr(last_refresh, 20, 1) = 'Z' AND length(last_refresh) = 20
            THEN substr(last_refresh, 1, 19) || '.000000Z'
        WHEN substr(last_refresh, 20, 1) = '.' AND substr(last_refresh, -1, 1) = 'Z'
            THEN substr(last_refresh, 1, 20)
                 || substr(substr(last_refresh, 21, length(last_refresh) - 21) || '000000', 1, 6)
                 || 'Z'
        ELSE last_refresh
    END
WHERE last_refresh IS NOT NULL AND length(last_refresh) <> 27;
