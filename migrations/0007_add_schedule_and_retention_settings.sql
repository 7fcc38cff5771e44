-- Add the schedule and retention settings, name the sweep's runner and prune its history
-- depends: 0005_schedule_sweep_job

-- The sweep and the app use both tables, so wait at most this long for a lock rather
-- than queue every writer behind this migration. A timeout fails the migration, and
-- migrate can be run again.
set local lock_timeout = '10s';

alter table learning.settings
    add column if not exists sweep_schedule text not null default '*/10 * * * *',
    add column if not exists sweep_schedule_changed_at timestamptz,
    add column if not exists run_history_retention interval not null default '30 days',
    add column if not exists run_details_retention interval not null default '14 days';

comment on column learning.settings.sweep_schedule is
    'Schedule of the pg_cron job interrupt-stale-sessions. session-sweeper config applies it.';
comment on column learning.settings.sweep_schedule_changed_at is
    'When sweep_schedule last changed; status waits for the first run after it.';
comment on column learning.settings.run_history_retention is
    'The sweep deletes its learning.sweep_runs rows older than this.';
comment on column learning.settings.run_details_retention is
    'The job purge-sweep-run-details deletes this product''s cron.job_run_details rows older than this.';

-- Check constraints name only themselves, so this trigger states the allowed range.
-- The schedule gets a first check here. session-sweeper config also checks the gap
-- between runs, and pg_cron checks the schedule again when the job is altered.
create or replace function learning.tg_settings__validate()
returns trigger
language plpgsql
set search_path = pg_catalog, learning
as $$
declare
    v_fields integer;
begin
    if tg_op = 'DELETE' then
        raise exception 'the settings row of session-sweeper cannot be deleted'
            using errcode = 'restrict_violation',
                hint = 'Change a setting with session-sweeper config instead.';
    end if;

    if new.idle_timeout < interval '1 minute' or new.idle_timeout > interval '7 days' then
        raise exception 'idle_timeout must be between 1 minute and 7 days, not %',
                new.idle_timeout
            using errcode = 'check_violation';
    end if;

    if new.sweep_batch_size < 1 or new.sweep_batch_size > 100000 then
        raise exception 'sweep_batch_size must be between 1 and 100000, not %',
                new.sweep_batch_size
            using errcode = 'check_violation';
    end if;

    v_fields := pg_catalog.array_length(
        pg_catalog.regexp_split_to_array(pg_catalog.btrim(new.sweep_schedule), '\s+'), 1
    );
    if new.sweep_schedule ~* 'second'
        or (v_fields <> 5 and new.sweep_schedule !~ '^@[a-z]+$')
    then
        raise exception 'sweep_schedule must be a five-field cron schedule, not %',
                pg_catalog.quote_literal(new.sweep_schedule)
            using errcode = 'check_violation',
                detail = 'pg_cron 1.4.2 rejects seconds schedules such as ''30 seconds''.';
    end if;

    if new.run_history_retention < interval '3 days'
        or new.run_history_retention > interval '365 days'
    then
        raise exception 'run_history_retention must be between 3 days and 365 days, not %',
                new.run_history_retention
            using errcode = 'check_violation';
    end if;

    if new.run_details_retention < interval '3 days'
        or new.run_details_retention > interval '365 days'
    then
        raise exception 'run_details_retention must be between 3 days and 365 days, not %',
                new.run_details_retention
            using errcode = 'check_violation';
    end if;

    if tg_op = 'UPDATE' and new.sweep_schedule is distinct from old.sweep_schedule then
        new.sweep_schedule_changed_at := pg_catalog.now();
    end if;

    return new;
end
$$;

-- Who ran a sweep. pg_cron in background-worker mode leaves application_name empty,
-- and then the backend type of pg_stat_activity names the worker.
create or replace function learning.sweep_run_by()
returns text
language sql
stable
set search_path = pg_catalog, learning
as $$
    select coalesce(
        nullif(pg_catalog.current_setting('application_name'), ''),
        (
            select a.backend_type
            from pg_catalog.pg_stat_activity as a
            where a.pid = pg_catalog.pg_backend_pid()
        ),
        'unknown'
    )
$$;

comment on function learning.sweep_run_by() is
    'Returns the application_name of this session, or its backend type when that is empty.';

alter table learning.sweep_runs
    alter column run_by set default learning.sweep_run_by();

comment on column learning.sweep_runs.run_by is
    'application_name of the session that ran the sweep, or its backend type when empty.';

-- The sweep prunes its own history, so learning.sweep_runs stays bounded without a
-- second job. sweep_runs_started_at_idx serves the delete.
create or replace function learning.start_sweep_run(
    out run_id bigint,
    out cutoff timestamptz,
    out batch_size integer
)
language plpgsql
set search_path = pg_catalog, learning
as $$
declare
    v_retention interval;
begin
    cutoff := learning.stale_cutoff();

    select s.sweep_batch_size, s.run_history_retention
    into batch_size, v_retention
    from learning.settings as s;

    delete from learning.sweep_runs as r
    where r.started_at < pg_catalog.now() - v_retention;

    insert into learning.sweep_runs (cutoff, batch_size)
    values (cutoff, batch_size)
    returning id into run_id;
end
$$;

comment on function learning.start_sweep_run() is
    'Deletes runs older than run_history_retention, then records the start of a sweep run.';

-- Run what changed once, so that a wrong column name fails this migration.
do $$
declare
    v_run record;
begin
    perform learning.sweep_run_by();
    update learning.settings set sweep_batch_size = sweep_batch_size;
    select * into v_run from learning.start_sweep_run();
    delete from learning.sweep_runs where id = v_run.run_id;
end
$$;
