-- The settings in force.
select
    s.idle_timeout::text as idle_timeout,
    s.sweep_batch_size
from learning.settings as s;
