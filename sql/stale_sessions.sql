-- Stale sessions still waiting for the sweep, and how long the oldest one has been
-- stale, in seconds (null when there is none).
select
    pg_catalog.count(*)::integer as stale_sessions,
    extract(epoch from pg_catalog.now() - (
        pg_catalog.min(s.last_event_at)
        + (select st.idle_timeout from learning.settings as st)
    ))::float8 as oldest_stale_seconds
from learning.sessions as s
where s.status = 'active'
    and s.sweep_key < learning.stale_cutoff()
    and s.last_event_at < learning.stale_cutoff();
