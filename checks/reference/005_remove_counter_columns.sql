-- Migration 005 of the monitored job system: drop the deprecated run counters.
-- partition_progress is the single source of truth; these columns have not been maintained
-- since the dashboard-sync fix. No CASCADE: a view or other object that still uses a column
-- makes this fail instead of silently dropping that object.
ALTER TABLE run_metadata DROP COLUMN completed_workers;
ALTER TABLE run_metadata DROP COLUMN failed_workers;
