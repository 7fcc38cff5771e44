-- Schedule the job purge-sweep-run-details, which bounds cron.job_run_details
-- depends: 0008_create_run_history_view

-- With pg_cron in another database, session-sweeper migrate schedules this job there.
-- The command is sql/purge_run_details.sql with the retention in place of {retention},
-- the text that session-sweeper config and verify build, so that they find this job
-- unchanged. A test compares the two.
do $$
declare
    v_retention interval;
begin
    if pg_catalog.current_setting('cron.database_name', true)
        is distinct from pg_catalog.current_database()
    then
        return;
    end if;

    select s.run_details_retention into v_retention from learning.settings as s;

    perform cron.schedule(
        'purge-sweep-run-details',
        '17 3 * * *', -- every day at 03:17 UTC
        pg_catalog.replace(
            $command$delete from cron.job_run_details as d
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
    )$command$,
            '{retention}',
            pg_catalog.quote_literal(v_retention::text) || '::interval'
        )
    );
end
$$;
