-- Unschedule the job interrupt-stale-sessions
-- pg_cron stays installed, because other jobs may use it. Its run history in
-- cron.job_run_details stays too.

do $$
begin
    -- With pg_cron in another database, session-sweeper rollback unschedules the job
    -- over its connection to that database.
    if pg_catalog.to_regclass('cron.job') is null then
        return;
    end if;

    if exists (select from cron.job where jobname = 'interrupt-stale-sessions') then
        perform cron.unschedule('interrupt-stale-sessions');
    end if;
end
$$;
