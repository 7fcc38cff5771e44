-- Create the settings row and learning.interrupt_stale_sessions(user_id)
-- depends: 0001_create_learning_tables

-- One row of settings that every path reads, so operations change them with an
-- UPDATE and no migration.
create table if not exists learning.settings (
    singleton boolean not null default true
        constraint settings_pkey primary key
        constraint settings_singleton_check check (singleton),
    idle_timeout interval not null default '30 minutes'
        constraint settings_idle_timeout_check
            check (idle_timeout >= interval '1 minute' and idle_timeout <= interval '7 days'),
    sweep_batch_size integer not null default 1000
        constraint settings_sweep_batch_size_check
            check (sweep_batch_size between 1 and 100000)
);

comment on table learning.settings is
    'The settings of session-sweeper, in a single row.';
comment on column learning.settings.idle_timeout is
    'An active session with no event for longer than this is stale.';
comment on column learning.settings.sweep_batch_size is
    'Sessions the sweep interrupts in one transaction.';

insert into learning.settings default values
on conflict do nothing;

-- Check constraints name only themselves, so this trigger states the allowed range.
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

comment on function learning.tg_settings__validate() is
    'Rejects settings out of range with a message that states the range.';

create or replace trigger settings_validate
    before insert or update or delete on learning.settings
    for each row
    execute function learning.tg_settings__validate();

-- The one definition of "stale": an active session is stale when its last event is
-- older than this cutoff. The comparison is strict.
create or replace function learning.stale_cutoff()
returns timestamptz
language sql
stable
set search_path = pg_catalog, learning
as $$
    select pg_catalog.now() - s.idle_timeout
    from learning.settings as s
$$;

comment on function learning.stale_cutoff() is
    'Returns the time before which the last event of an active session makes it stale.';

create or replace function learning.interrupt_stale_sessions(p_user_id text)
returns integer
language plpgsql
set search_path = pg_catalog, learning
as $$
declare
    v_cutoff timestamptz;
    v_interrupted integer;
begin
    if p_user_id is null or p_user_id = '' then
        raise exception 'user id must not be null or empty'
            using errcode = 'null_value_not_allowed',
                hint = 'Pass the user_id whose stale sessions should be interrupted.';
    end if;

    v_cutoff := learning.stale_cutoff();

    -- Rows that another transaction holds are skipped instead of waited for: that
    -- transaction is a sweep or a trigger interrupting them, or a write touching them.
    with stale as (
        select s.id
        from learning.sessions as s
        where s.user_id = p_user_id
            and s.status = 'active'
            and s.last_event_at < v_cutoff
        order by s.id
        for no key update skip locked
    )
    update learning.sessions as s
    set status = 'interrupted',
        ended_at = s.last_event_at
    from stale
    where s.id = stale.id;

    get diagnostics v_interrupted = row_count;
    return v_interrupted;
end
$$;

comment on function learning.interrupt_stale_sessions(text) is
    'Interrupts the stale sessions of one user and returns how many it interrupted.';

-- Run the function once, so that a wrong column name fails this migration and not
-- the app's first call.
do $$
begin
    perform learning.interrupt_stale_sessions('session-sweeper install check');
end
$$;
