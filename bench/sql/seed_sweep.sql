-- Sessions %(first)s .. %(last)s for 10 sessions per user: every hundredth is active
-- and fresh (started 20 minutes ago), the rest completed or interrupted with old
-- timestamps. The stale sessions of a run are picked from the finished ones later.
insert into learning.sessions (user_id, status, started_at, last_event_at, ended_at)
select
    'user-' || (g / 10),
    case when g %% 100 = 0 then 'active' when g %% 10 = 1 then 'interrupted' else 'completed' end,
    case when g %% 100 = 0 then now() - interval '20 minutes'
        else now() - interval '2 hours' - g * interval '1 second' end,
    case when g %% 100 = 0 then now() - interval '1 minute'
        else now() - interval '110 minutes' - g * interval '1 second' end,
    case when g %% 100 = 0 then null
        else now() - interval '110 minutes' - g * interval '1 second' end
from generate_series(%(first)s::bigint, %(last)s::bigint) as g
order by g;
