-- Make the k = 2 session of every fourth user active and stale again. The bench
-- connection runs this with session_replication_role = replica, which skips the
-- trigger that keeps interrupted sessions final.
update learning.sessions
set status = 'active',
    ended_at = null
where id %% 5 = 2
    and (id / 5) %% 4 = 0
    and id <= %(users)s * 5
    and status <> 'active';
