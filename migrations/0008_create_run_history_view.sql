-- Create the view learning.sweep_run_history of pg_cron's runs with the sweep's counts
-- depends: 0007_add_schedule_and_retention_settings

-- The view reads cron.job_run_details, so it exists only when pg_cron lives in this
-- database. With pg_cron in another database, session-sweeper status joins the two
-- sides itself.
do $$
begin
    if pg_catalog.to_regclass('cron.job_run_details') is null then
        raise notice 'learning.sweep_run_history is not created: pg_cron is not in database %',
            pg_catalog.current_database();
        return;
    end if;

    -- A sweep run belongs to the pg_cron run whose time span contains its start. The
    -- lateral join is one range scan of sweep_runs_started_at_idx for each pg_cron row.
    execute $view$
        create or replace view learning.sweep_run_history as
        select
            d.runid,
            d.jobid,
            d.status,
            d.start_time,
            d.end_time,
            d.return_message,
            r.interrupted,
            r.batches,
            r.run_by
        from cron.job_run_details as d
        join cron.job as j
            on j.jobid = d.jobid
        left join lateral (
            select
                pg_catalog.sum(sr.interrupted)::integer as interrupted,
                pg_catalog.sum(sr.batches)::integer as batches,
                pg_catalog.string_agg(distinct sr.run_by, ', ') as run_by
            from learning.sweep_runs as sr
            where sr.backend_pid = d.job_pid
                and sr.started_at >= d.start_time - interval '1 minute'
                and sr.started_at <= coalesce(d.end_time, pg_catalog.now())
            having pg_catalog.count(*) > 0
        ) as r on true
        where j.jobname = 'interrupt-stale-sessions'
            and j.database = pg_catalog.current_database()
    $view$;

    comment on view learning.sweep_run_history is
        'Runs of the job interrupt-stale-sessions from pg_cron, with the sweep''s counts.';
end
$$;
