-- The sweep job as pg_cron stores it. Parameter: job_name.
select
    j.jobid,
    j.jobname,
    j.schedule,
    j.command,
    j.database,
    j.username,
    j.active
from cron.job as j
where j.jobname = %(job_name)s;
