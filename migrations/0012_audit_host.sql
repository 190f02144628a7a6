-- authvault format 12: the host of each audit entry. Many hosts share one
-- vault; a pid names a process only on its own host. Entries written before
-- this format keep NULL (their host is unknown) and their v1 MAC; new
-- entries carry the host and are MACed as v2, host included.

ALTER TABLE audit_log ADD COLUMN host TEXT;
