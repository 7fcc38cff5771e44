-- Create the group role session_sweeper_app with only the privileges the app needs
-- depends: 0005_schedule_sweep_job

-- A NOLOGIN group role, so no password lives here. A DBA grants it to the app's login
-- role: grant session_sweeper_app to app_login. Roles belong to the whole server, so
-- it is created only when missing, and a second database reuses it.
do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'session_sweeper_app') then
        create role session_sweeper_app nologin;
    end if;
exception
    -- A migrate of another database on the same server created it first.
    when duplicate_object then
        null;
end
$$;

-- PostgreSQL 15 lets only roles with CREATEROLE comment on a role. An owner without
-- it migrates once a superuser has created the role, and the role then has no comment.
do $$
begin
    comment on role session_sweeper_app is
        'The app of session-sweeper: inserts reading events and reads sessions.';
exception
    when insufficient_privilege then
        raise notice '% lacks CREATEROLE, so the comment on session_sweeper_app is left unchanged',
            current_user;
end
$$;

grant usage on schema learning to session_sweeper_app;
grant insert on learning.reading_events to session_sweeper_app;
grant select on learning.sessions to session_sweeper_app;

-- The app has no UPDATE on sessions, so both paths that interrupt sessions for it run
-- with the owner's rights. That opens nothing new: the trigger acts only on the
-- sessions named in the inserted rows, whose (session_id, user_id) pairs the foreign
-- key has already checked, and on the stale sessions of those rows' users. The function
-- acts only on the stale sessions of the one user it is given. Both set search_path.
alter function learning.tg_reading_events__touch_sessions() security definer;
alter function learning.interrupt_stale_sessions(text) security definer;

-- A security definer function must not be callable by every role.
revoke execute on function learning.interrupt_stale_sessions(text) from public;
grant execute on function learning.interrupt_stale_sessions(text) to session_sweeper_app;

-- A trigger function runs without an EXECUTE check when its trigger fires, so no role
-- needs the privilege. The owner keeps it.
revoke execute on function learning.tg_reading_events__touch_sessions() from public;

-- The sweep and its steps interrupt every user's sessions and write the run history.
-- Only the job's owner, pg_cron running as that owner, and the DBA's sweep command run
-- them.
revoke execute on procedure learning.sweep_stale_sessions(integer, integer) from public;
revoke execute on function learning.start_sweep_run() from public;
revoke execute on function learning.record_sweep_run(bigint, integer, integer, boolean)
    from public;
revoke execute on function
    learning.interrupt_stale_batch(timestamptz, timestamptz, bigint, integer) from public;
