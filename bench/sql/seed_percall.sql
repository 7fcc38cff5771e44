-- One user with 1,000 completed sessions and, when %(stale)s > 0, that many active
-- stale ones besides.
insert into learning.sessions (user_id, status, started_at, last_event_at, ended_at)
select
    %(user_id)s,
    case when g <= 1000 then 'completed' else 'active' end,
    now() - interval '3 hours' - g * interval '1 minute',
    now() - interval '2 hours' - g * interval '1 minute',
    case when g <= 1000 then now() - interval '2 hours' - g * interval '1 minute' end
from generate_series(1, 1000 + %(stale)s) as g;
