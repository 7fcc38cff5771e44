-- Install pg_cron and schedule the sweep as the job interrupt-stale-sessions
-- depends: 0004_create_event_trigger

-- Each of these failures leaves the earlier migrations applied, so the trigger and
-- interrupt_stale_sessions keep working without pg_cron.
--
-- pg_cron 1.4.2 makes cron.database_name superuser-only, as PostgreSQL makes
-- shared_preload_libraries, so only superusers and members of pg_read_all_settings can
-- read them. For other roles an installed pg_cron settles both checks, because CREATE
-- EXTENSION pg_cron works only when it is preloaded and only in cron.database_name.
do $$
declare
    v_cron_database text;
begin
    if not pg_catalog.pg_has_role('pg_read_all_settings', 'usage') then
        if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
            return;
        end if;
        raise exception 'pg_cron is not installed in database %', pg_catalog.current_database()
            using errcode = 'insufficient_privilege',
                detail = 'Only superusers and members of pg_read_all_settings can read '
                    'cron.database_name, and only superusers can create pg_cron.',
                hint = 'Ask a superuser to run: create extension pg_cron; in database '
                    || pg_catalog.current_database() || ', then grant usage on schema cron to '
                    || pg_catalog.quote_ident(current_user) || ';';
    end if;

    v_cron_database := pg_catalog.current_setting('cron.database_name', true);

    if not exists (
        select from pg_catalog.pg_available_extensions where name = 'pg_cron'
    ) then
        raise exception 'pg_cron is not installed on this server'
            using errcode = 'feature_not_supported',
                hint = 'Install the postgresql-15-cron package, set '
                    'shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                    || pg_catalog.current_database()
                    || ''' in postgresql.conf, then restart PostgreSQL.';
    end if;

    if pg_catalog.current_setting('shared_preload_libraries') !~ '(^|[\s,])"?pg_cron"?($|[\s,])'
    then
        raise exception 'pg_cron is not in shared_preload_libraries'
            using errcode = 'feature_not_supported',
                hint = 'Set shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                    || pg_catalog.current_database()
                    || ''' in postgresql.conf, then restart PostgreSQL.';
    end if;

    -- session-sweeper migrate sets session_sweeper.cron_database when it schedules the
    -- job itself over a second connection to the pg_cron database.
    if v_cron_database is distinct from pg_catalog.current_database()
        and pg_catalog.current_setting('session_sweeper.cron_database', true)
            is distinct from v_cron_database
    then
        raise exception 'pg_cron runs in database %, not in %',
                coalesce(v_cron_database, 'postgres'), pg_catalog.current_database()
            using errcode = 'feature_not_supported',
                hint = 'Set cron.database_name = '''
                    || pg_catalog.current_database()
                    || ''' in postgresql.conf and restart PostgreSQL.';
    end if;
end
$$;

-- With pg_cron in another database, session-sweeper migrate creates the extension there
-- and schedules the job with cron.schedule_in_database, so this block does nothing.
-- cron.schedule upserts by job name and user, so a migrate by a second role would add a
-- second job: the job is found by name alone instead, and updated by id.
do $$
declare
    v_jobid bigint;
    v_database text;
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

    create extension if not exists pg_cron;

    select j.jobid, j.database
    into v_jobid, v_database
    from cron.job as j
    where j.jobname = 'interrupt-stale-sessions'
    order by j.jobid
    limit 1;

    if v_jobid is null then
        perform cron.schedule(
            'interrupt-stale-sessions',
            '*/10 * * * *', -- every 10 minutes
            'call learning.sweep_stale_sessions()'
        );
        return;
    end if;

    -- pg_cron 1.4 keeps a job's database when it is scheduled again. A job left by an
    -- install into a database since dropped moves here. One that sweeps another live
    -- database stays where it is.
    if v_database <> pg_catalog.current_database()
        and exists (select from pg_catalog.pg_database as d where d.datname = v_database)
    then
        raise exception 'the pg_cron job interrupt-stale-sessions already sweeps database %',
                v_database
            using errcode = 'duplicate_object',
                detail = 'pg_cron job names are unique, so one server runs one sweep job.',
                hint = 'Roll session-sweeper back in database ' || v_database
                    || ' first, or unschedule that job.';
    end if;

    -- Active and the owner stay as an operator set them.
    perform cron.alter_job(
        v_jobid,
        schedule => '*/10 * * * *', -- every 10 minutes
        command => 'call learning.sweep_stale_sessions()',
        database => pg_catalog.current_database()
    );
    perform cron.unschedule(j.jobid)
    from cron.job as j
    where j.jobname = 'interrupt-stale-sessions'
        and j.jobid <> v_jobid;
end
$$;
