-- Unschedule the job purge-sweep-run-details
-- With pg_cron in another database, session-sweeper rollback unschedules it there.

-- By id, because cron.unschedule by name finds only the current user's job, and another
-- role may have scheduled it.
do $$
begin
    if pg_catalog.to_regclass('cron.job') is null then
        return;
    end if;

    perform cron.unschedule(j.jobid)
    from cron.job as j
    where j.jobname = 'purge-sweep-run-details'
        and j.database = pg_catalog.current_database();
end
$$;
