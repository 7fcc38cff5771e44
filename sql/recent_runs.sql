-- The latest runs of one pg_cron job, newest first. Parameters: jobid, limit.
-- cron.job_run_details is indexed only on runid, so this walks that index backwards
-- and stops after `limit` rows of the job. Rows of other jobs on the way are read and
-- skipped, and the purge job keeps this job's own rows few.
select
    d.runid,
    d.job_pid,
    d.status,
    d.start_time,
    d.end_time,
    d.return_message
from cron.job_run_details as d
where d.jobid = %(jobid)s
order by d.runid desc
limit %(limit)s;
