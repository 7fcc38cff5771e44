-- The command of the pg_cron job purge-sweep-run-details. It deletes the rows of this
-- product's own jobs from cron.job_run_details that started before the retention,
-- and never touches other jobs' rows. session-sweeper puts the retention in place of
-- {retention} when it schedules the job, because the job may run in a database
-- without learning.settings.
-- cron.job_run_details is indexed only on runid, and runids grow with start_time. The
-- first subquery walks that index from the oldest row to the first one inside the
-- retention, and the delete is a range scan of the same index below it. Both read
-- only rows older than the retention, other jobs' old rows included.
delete from cron.job_run_details as d
where d.jobid in (
        select j.jobid
        from cron.job as j
        where j.jobname in ('interrupt-stale-sessions', 'purge-sweep-run-details')
    )
    and d.runid < coalesce(
        (
            select f.runid
            from cron.job_run_details as f
            where f.start_time >= pg_catalog.now() - {retention}
                or f.start_time is null
            order by f.runid
            limit 1
        ),
        (select pg_catalog.max(m.runid) + 1 from cron.job_run_details as m)
    )
