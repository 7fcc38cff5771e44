-- Drop schema learning, unless its tables hold rows

do $$
declare
    v_sessions bigint;
    v_events bigint;
begin
    if pg_catalog.to_regclass('learning.sessions') is null then
        return;
    end if;

    select pg_catalog.count(*) into v_sessions from learning.sessions;
    select pg_catalog.count(*) into v_events from learning.reading_events;

    if (v_sessions > 0 or v_events > 0)
        and pg_catalog.current_setting('session_sweeper.allow_drop_data', true)
            is distinct from 'on'
    then
        raise exception
            'rollback would drop % sessions and % reading events', v_sessions, v_events
            using errcode = 'object_in_use',
                detail = 'Dropping schema learning deletes every row in its tables.',
                hint = 'Back the rows up first, then run the rollback again with '
                    '--drop-data (session-sweeper rollback --all --drop-data).';
    end if;
end
$$;

drop schema if exists learning cascade;
