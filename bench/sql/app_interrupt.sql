update learning.sessions
set status = 'interrupted',
    ended_at = last_event_at
where user_id = %(user_id)s
    and status = 'active'
    and id <> %(session_id)s
    and last_event_at < now() - (select idle_timeout from learning.settings)
