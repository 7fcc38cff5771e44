-- Create the trigger that touches sessions and interrupts stale ones on event inserts
-- depends: 0003_create_sweep_procedure

-- One statement for the whole insert, whatever its row count: it touches the active
-- sessions named in the batch, then interrupts the other stale sessions of the
-- batch's users.
create or replace function learning.tg_reading_events__touch_sessions()
returns trigger
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    with batch as (
        select
            pg_catalog.array_agg(distinct e.session_id) as session_ids,
            pg_catalog.array_agg(distinct e.user_id) as user_ids
        from new_events as e
    ),
    -- The touch waits for row locks. It takes them here, sorted by id, because an
    -- UPDATE locks in the order of its plan (a sequential scan goes by page), and two
    -- inserts locking the same sessions in different orders can deadlock.
    locked as (
        select s.id
        from learning.sessions as s, batch
        where s.id = any (batch.session_ids)
            and s.status = 'active'
        order by s.id
        for no key update of s
    ),
    -- greatest() keeps the clock from moving backwards when an older transaction
    -- commits later.
    touched as (
        update learning.sessions as s
        set last_event_at = greatest(s.last_event_at, pg_catalog.now())
        from locked
        where s.id = locked.id
        returning s.id
    ),
    -- The scalar subquery on touched makes the touch run before this scan. The
    -- cleanup takes no lock that it must wait for, so it cannot join a deadlock.
    stale as (
        select s.id
        from learning.sessions as s, batch
        where s.user_id = any (batch.user_ids)
            and s.status = 'active'
            and s.last_event_at < learning.stale_cutoff()
            and s.id <> all (array(select touched.id from touched))
            and s.id <> all (batch.session_ids)
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
