-- The command of the pg_cron job interrupt-stale-sessions. Run it on its own, outside
-- a transaction block, because the procedure commits after each batch.
call learning.sweep_stale_sessions()
