-- The stale sessions of the next run: every step-th session, spread over the table.
-- The caller empties bench.stale_ids first.
insert into bench.stale_ids (id)
select id
from learning.sessions
where id %% %(step)s = 7
