-- Start time of the latest succeeded run of one pg_cron job. Parameter: jobid.
-- It walks the runid index backwards and stops at the first success, so it reads
-- little while the job is healthy.
select d.start_time
from cron.job_run_details as d
where d.jobid = %(jobid)s
    and d.status = 'succeeded'
order by d.runid desc
limit 1;
