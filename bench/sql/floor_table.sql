-- A copy of learning.reading_events without the trigger: the floor of the write path.
-- It has the same columns, defaults, indexes and ownership key, so an insert into it
-- costs what an insert into reading_events costs without the session upkeep.
create schema if not exists bench;

create table if not exists bench.reading_events_floor (
    like learning.reading_events including all
);

alter table bench.reading_events_floor
    add constraint reading_events_floor_session_id_user_id_fkey
        foreign key (session_id, user_id) references learning.sessions (id, user_id);
