-- Five sessions for each of %(users)s users: k = 1 is active and fresh, k = 2 is
-- active and stale for every fourth user and completed otherwise, k = 3..5 are
-- completed. Rows are inserted in (user, k) order, so user u's sessions have ids
-- 5u + 1 .. 5u + 5.
insert into learning.sessions (user_id, status, started_at, last_event_at, ended_at)
select
    'user-' || u,
    case when k = 1 or (k = 2 and u %% 4 = 0) then 'active' else 'completed' end,
    case when k = 1 then now() - interval '10 minutes' else now() - k * interval '3 hours' end,
    case when k = 1 then now() - interval '1 minute' else now() - k * interval '2 hours' end,
    case when k = 1 or (k = 2 and u %% 4 = 0) then null else now() - k * interval '2 hours' end
from generate_series(0, %(users)s - 1) as u, generate_series(1, 5) as k
order by u, k;
