-- Make the user's interrupted sessions active and stale again. Runs with
-- session_replication_role = replica, which skips the trigger that keeps them final.
update learning.sessions
set status = 'active',
    ended_at = null
where user_id = %(user_id)s
    and status = 'interrupted'
