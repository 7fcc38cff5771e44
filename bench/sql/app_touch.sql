update learning.sessions
set last_event_at = greatest(last_event_at, now())
where id = %(session_id)s
    and status = 'active'
