-- Revoke the privileges of session_sweeper_app, and drop it when nothing else uses it

grant execute on function
    learning.interrupt_stale_batch(timestamptz, timestamptz, bigint, integer) to public;
grant execute on function learning.record_sweep_run(bigint, integer, integer, boolean)
    to public;
grant execute on function learning.start_sweep_run() to public;
grant execute on procedure learning.sweep_stale_sessions(integer, integer) to public;
grant execute on function learning.tg_reading_events__touch_sessions() to public;
grant execute on function learning.interrupt_stale_sessions(text) to public;

alter function learning.interrupt_stale_sessions(text) security invoker;
alter function learning.tg_reading_events__touch_sessions() security invoker;

do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'session_sweeper_app') then
        return;
    end if;

    revoke execute on function learning.interrupt_stale_sessions(text)
        from session_sweeper_app;
    revoke select on learning.sessions from session_sweeper_app;
    revoke insert on learning.reading_events from session_sweeper_app;
    revoke usage on schema learning from session_sweeper_app;

    -- Dropping a role that login roles are members of would take the app's access away
    -- in every database, so it stays while it has members.
    if exists (
        select
        from pg_catalog.pg_auth_members as m
            join pg_catalog.pg_roles as r on r.oid = m.roleid
        where r.rolname = 'session_sweeper_app'
    ) then
        raise notice 'role session_sweeper_app is kept, because other roles are its members';
        return;
    end if;

    begin
        drop role session_sweeper_app;
    exception
        -- Another database on this server still grants it privileges.
        when dependent_objects_still_exist then
            raise notice 'role session_sweeper_app is kept, because another database uses it';
        -- A superuser created it for an owner without CREATEROLE, and drops it too.
        when insufficient_privilege then
            raise notice 'role session_sweeper_app is kept, because % lacks CREATEROLE',
                current_user;
    end;
end
$$;
