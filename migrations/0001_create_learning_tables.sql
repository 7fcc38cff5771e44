-- Create schema learning with the sessions and reading_events tables
-- depends:

create schema if not exists learning;

comment on schema learning is 'Reading sessions and their events, kept by session-sweeper.';

create table if not exists learning.sessions (
    id bigint generated always as identity
        constraint sessions_pkey primary key,
    user_id text not null
        constraint sessions_user_id_check check (user_id <> ''),
    status text not null default 'active'
        constraint sessions_status_check
            check (status in ('active', 'completed', 'interrupted')),
    started_at timestamptz not null default pg_catalog.now(),
    last_event_at timestamptz not null default pg_catalog.now(),
    ended_at timestamptz,
    duration_seconds integer not null default 0
        constraint sessions_duration_seconds_check check (duration_seconds >= 0),
    -- A lower bound of last_event_at that stays the same while events arrive, unless
    -- started_at lies after last_event_at. The sweep's index is on this column and not
    -- on last_event_at, so the touch on every event insert changes no indexed column
    -- and can be a HOT update.
    sweep_key timestamptz generated always as (least(started_at, last_event_at)) stored,
    constraint sessions_ended_at_check check (status <> 'active' or ended_at is null),
    -- The target of the ownership key from reading_events.
    constraint sessions_id_user_id_key unique (id, user_id)
)
-- Free space on each page lets a touch write the new row version on the same page,
-- which a HOT update needs.
with (fillfactor = 80);

comment on table learning.sessions is
    'Reading sessions. A session stays active until the app completes it or session-sweeper interrupts it.';
comment on column learning.sessions.last_event_at is
    'Server time of the latest event insert for this session: the liveness clock.';
comment on column learning.sessions.sweep_key is
    'least(started_at, last_event_at): the key of the sweep''s index, unchanged by most touches.';

-- The per-user cleanup of the trigger and of interrupt_stale_sessions. A user has few
-- active sessions, so the stale test on last_event_at runs on a handful of rows.
-- user_id is never null, so "user_id is not null" excludes no row. It lets only a query
-- with a condition on user_id use this index, so the planner cannot answer the sweep's
-- batch query with a full scan of it and a sort. It picked that plan on 100,000 sessions
-- with 1,000 active, because it estimated that every active session was stale.
create index if not exists sessions_active_user_id_idx
    on learning.sessions (user_id)
    where status = 'active' and user_id is not null;

-- The all-users sweep walks this index in order, from the oldest key up to the cutoff.
create index if not exists sessions_active_sweep_key_id_idx
    on learning.sessions (sweep_key, id)
    where status = 'active';

create table if not exists learning.reading_events (
    id bigint generated always as identity
        constraint reading_events_pkey primary key,
    session_id bigint not null,
    user_id text not null,
    event_type text not null,
    occurred_at timestamptz not null,
    received_at timestamptz not null default pg_catalog.now(),
    payload jsonb not null default '{}',
    -- Ownership: an event can only name a session of the same user.
    constraint reading_events_session_id_user_id_fkey
        foreign key (session_id, user_id) references learning.sessions (id, user_id)
);

comment on table learning.reading_events is
    'Events the app sends while a session is open. occurred_at is the client''s clock, stored as sent.';
comment on column learning.reading_events.occurred_at is
    'Client time of the event. It never decides whether a session is alive.';

create index if not exists reading_events_session_id_idx
    on learning.reading_events (session_id);
