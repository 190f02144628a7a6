-- authvault format 10: new usage events reach the hourly rollup from the
-- code that inserts them (one upsert per hour and dimension per
-- transaction, in that transaction) instead of a trigger that cost one
-- upsert per event. Replacements and removals keep their triggers.
DROP TRIGGER usage_hourly_insert;
