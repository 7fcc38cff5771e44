-- Create the trigger that touches sessions and interrupts stale ones on event inserts
-- depends: 0003_create_sweep_procedure

-- Two statements at most for the whole insert, whatever its row count. The first
-- touches the active sessions named in the batch and checks whether the batch's users
-- have other stale sessions. Only then does the second interrupt them, so an insert for
-- a user with nothing stale pays for one statement and one UPDATE.
create or replace function learning.tg_reading_events__touch_sessions()
returns trigger
language plpgsql
set search_path = pg_catalog, learning
as $$
declare
    v_has_stale boolean;
begin
    -- The touch waits for row locks and takes them in id order, whatever scan the
    -- planner picks, so two inserts touching the same sessions cannot deadlock.
    -- greatest() keeps the clock from moving backwards when an older transaction
    -- commits later. The touch runs when the statement ends, before the cleanup below,
    -- and the check's snapshot does not see it, so the check and the cleanup leave the
    -- batch's own sessions out.
    --
    -- The cutoff is now() - learning.settings.idle_timeout, the definition in
    -- learning.stale_cutoff(). Calling that function here added about 40 us to every
    -- insert: a SQL function with a SET clause is never inlined, and PostgreSQL 15
    -- plans its body again for each query that calls it.
    with locked as (
        select s.id
        from learning.sessions as s
        where s.id = any (array(select e.session_id from new_events as e))
            and s.status = 'active'
        order by s.id
        for no key update of s
    ),
    touched as (
        update learning.sessions as s
        set last_event_at = greatest(s.last_event_at, pg_catalog.now())
        from locked
        where s.id = locked.id
    )
    select exists (
        select
        from learning.sessions as s
        where s.user_id = any (array(select e.user_id from new_events as e))
            and s.status = 'active'
            and s.id <> all (array(select e.session_id from new_events as e))
            and s.last_event_at < pg_catalog.now() - (
                select st.idle_timeout from learning.settings as st
            )
    )
    into v_has_stale;

    if not v_has_stale then
        return null;
    end if;

    -- The cleanup takes no lock that it must wait for, so it cannot join a deadlock.
    with stale as (
        select s.id
        from learning.sessions as s
        where s.user_id = any (array(select e.user_id from new_events as e))
            and s.status = 'active'
            and s.id <> all (array(select e.session_id from new_events as e))
            and s.last_event_at < pg_catalog.now() - (
                select st.idle_timeout from learning.settings as st
            )
        for no key update of s skip locked
    )
    update learning.sessions as s
    set status = 'interrupted',
        ended_at = s.last_event_at
    from stale
    where s.id = stale.id;

    return null;
end
$$;

comment on function learning.tg_reading_events__touch_sessions() is
    'Touches the sessions of inserted events and interrupts their users'' stale sessions.';

-- A statement-level trigger also fires once for COPY.
create or replace trigger reading_events_touch_sessions
    after insert on learning.reading_events
    referencing new table as new_events
    for each statement
    execute function learning.tg_reading_events__touch_sessions();

comment on trigger reading_events_touch_sessions on learning.reading_events is
    'The lazy path: every event insert keeps its sessions alive and cleans up stale ones.';

-- completed and interrupted are final. The WHEN clause keeps the check off the touch,
-- which never changes status.
create or replace function learning.tg_sessions__keep_final_state()
returns trigger
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    raise exception 'session % is % and cannot become %', old.id, old.status, new.status
        using errcode = 'check_violation',
            detail = 'completed and interrupted are final states.',
            hint = 'Start a new session for a reader who comes back.';
end
$$;

comment on function learning.tg_sessions__keep_final_state() is
    'Rejects a status change away from completed or interrupted.';

create or replace trigger sessions_keep_final_state
    before update of status on learning.sessions
    for each row
    when (old.status <> 'active' and new.status is distinct from old.status)
    execute function learning.tg_sessions__keep_final_state();

-- Insert nothing, which fires the trigger once, so that a wrong column name fails this
-- migration and not the first event insert.
insert into learning.reading_events (session_id, user_id, event_type, occurred_at)
select null, null, null, null
where false;
