-- authvault format 12 (PostgreSQL): the host of each audit entry.
-- Mirror of migrations/0012_audit_host.sql.

ALTER TABLE audit_log ADD COLUMN host TEXT COLLATE "C";
