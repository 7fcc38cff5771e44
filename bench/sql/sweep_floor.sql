-- The sweep's work in one unbatched UPDATE that locks nothing in advance.
update learning.sessions as s
set status = 'interrupted',
    ended_at = s.last_event_at
where s.status = 'active'
    and s.sweep_key < %(cutoff)s
    and s.last_event_at < %(cutoff)s
