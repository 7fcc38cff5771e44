-- Unschedule the job interrupt-stale-sessions
-- pg_cron stays installed, because other jobs may use it. Its run history in
-- cron.job_run_details stays too.

-- By id, because cron.unschedule by name finds only the current user's job, and another
-- role may have scheduled it. With pg_cron in another database, session-sweeper rollback
-- unschedules the job over its connection to that database.
do $$
begin
    if pg_catalog.to_regclass('cron.job') is null then
        return;
    end if;

    perform cron.unschedule(j.jobid)
    from cron.job as j
    where j.jobname = 'interrupt-stale-sessions'
        and j.database = pg_catalog.current_database();
end
$$;
