-- Install pg_cron and schedule the sweep as the job interrupt-stale-sessions
-- depends: 0004_create_event_trigger

-- Each of these failures leaves the earlier migrations applied, so the trigger and
-- interrupt_stale_sessions keep working without pg_cron.
do $$
declare
    v_cron_database text := pg_catalog.current_setting('cron.database_name', true);
begin
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

    if v_cron_database is distinct from pg_catalog.current_database() then
        raise exception 'pg_cron runs in database %, not in %',
                coalesce(v_cron_database, 'postgres'), pg_catalog.current_database()
            using errcode = 'feature_not_supported',
                hint = 'Set cron.database_name = '''
                    || pg_catalog.current_database()
                    || ''' in postgresql.conf and restart PostgreSQL.';
    end if;
end
$$;

create extension if not exists pg_cron;

-- cron.schedule updates the job of the same name and user, so a migrate by a second role
-- would add a second job. The job is found by name alone instead, and updated by id.
do $$
declare
    v_jobid bigint;
begin
    select pg_catalog.min(j.jobid)
    into v_jobid
    from cron.job as j
    where j.jobname = 'interrupt-stale-sessions';

    if v_jobid is null then
        perform cron.schedule(
            'interrupt-stale-sessions',
            '*/10 * * * *', -- every 10 minutes
            'call learning.sweep_stale_sessions()'
        );
        return;
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
