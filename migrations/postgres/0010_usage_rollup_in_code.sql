-- authvault format 10 (PostgreSQL): new usage events reach the hourly
-- rollup from the code that inserts them instead of a trigger. Mirror of
-- migrations/0010_usage_rollup_in_code.sql: drops the insert trigger and,
-- since nothing else uses it, its function. Replacements and removals keep
-- their triggers (usage_hourly_update, usage_hourly_delete).

DROP TRIGGER usage_hourly_insert ON usage_events;
DROP FUNCTION usage_hourly_insert();
