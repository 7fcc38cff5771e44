-- Schedule the job purge-sweep-run-details, which bounds cron.job_run_details
-- depends: 0008_create_run_history_view

-- With pg_cron in another database, session-sweeper migrate schedules this job there.
-- The command is sql/purge_run_details.sql with the retention in place of {retention},
-- the text that session-sweeper config and verify build, so that they find this job
-- unchanged. A test compares the two.
-- cron.schedule upserts by job name and user, so a migrate by a second role would add a
-- second job: the job is found by name alone instead, updated by id, and duplicates go.
do $$
declare
    v_retention interval;
    v_command text;
    v_jobid bigint;
begin
    -- pg_settings leaves out cron.database_name for roles that cannot read it, and for
    -- them the first block of 0005 found pg_cron installed here.
    if coalesce(
        (
            select s.setting
            from pg_catalog.pg_settings as s
            where s.name = 'cron.database_name'
        ),
        (
            select pg_catalog.current_database()
            from pg_catalog.pg_extension as e
            where e.extname = 'pg_cron'
        )
    ) is distinct from pg_catalog.current_database()
    then
        return;
    end if;

    select s.run_details_retention into v_retention from learning.settings as s;

    v_command := pg_catalog.replace(
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
    );

    select j.jobid
    into v_jobid
    from cron.job as j
    where j.jobname = 'purge-sweep-run-details'
    order by j.jobid
    limit 1;

    if v_jobid is null then
        perform cron.schedule(
            'purge-sweep-run-details',
            '17 3 * * *', -- every day at 03:17 UTC
            v_command
        );
        return;
    end if;

    -- The purge reads only pg_cron's tables, so it always runs in this database, the
    -- cron database. Active and the owner stay as an operator set them.
    perform cron.alter_job(
        v_jobid,
        schedule => '17 3 * * *', -- every day at 03:17 UTC
        command => v_command,
        database => pg_catalog.current_database()
    );
    perform cron.unschedule(j.jobid)
    from cron.job as j
    where j.jobname = 'purge-sweep-run-details'
        and j.jobid <> v_jobid;
end
$$;
