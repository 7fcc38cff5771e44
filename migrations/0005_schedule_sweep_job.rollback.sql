-- Unschedule the job interrupt-stale-sessions
-- pg_cron stays installed, because other jobs may use it. Its run history in
-- cron.job_run_details stays too.

-- By id, because cron.unschedule by name finds only the current user's job, and another
-- role may have scheduled it.
do $$
begin
    perform cron.unschedule(j.jobid)
    from cron.job as j
    where j.jobname = 'interrupt-stale-sessions';
end
$$;
