-- Drop the schedule and retention settings, and restore the functions of 0002 and 0003

do $$
declare
    v_changed boolean;
begin
    select s.sweep_schedule <> '*/10 * * * *'
        or s.run_history_retention <> interval '30 days'
        or s.run_details_retention <> interval '14 days'
    into v_changed
    from learning.settings as s;

    if v_changed
        and pg_catalog.current_setting('session_sweeper.allow_drop_data', true)
            is distinct from 'on'
    then
        raise exception 'rollback would drop settings changed from their defaults'
            using errcode = 'object_in_use',
                detail = 'learning.settings holds a schedule or retention that an operator set.',
                hint = 'Note the values in learning.settings, then run the rollback '
                    'again with --drop-data.';
    end if;
end
$$;

create or replace function learning.start_sweep_run(
    out run_id bigint,
    out cutoff timestamptz,
    out batch_size integer
)
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    cutoff := learning.stale_cutoff();

    select s.sweep_batch_size
    into batch_size
    from learning.settings as s;

    insert into learning.sweep_runs (cutoff, batch_size)
    values (cutoff, batch_size)
    returning id into run_id;
end
$$;

comment on function learning.start_sweep_run() is
    'Records the start of a sweep run and returns its id, cutoff and batch size.';

alter table learning.sweep_runs
    alter column run_by set default pg_catalog.current_setting('application_name');

comment on column learning.sweep_runs.run_by is null;

drop function if exists learning.sweep_run_by();

create or replace function learning.tg_settings__validate()
returns trigger
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    if tg_op = 'DELETE' then
        raise exception 'the settings row of session-sweeper cannot be deleted'
            using errcode = 'restrict_violation',
                hint = 'Change a setting with UPDATE learning.settings instead.';
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

    return new;
end
$$;

alter table learning.settings
    drop column if exists run_details_retention,
    drop column if exists run_history_retention,
    drop column if exists sweep_schedule_changed_at,
    drop column if exists sweep_schedule;
