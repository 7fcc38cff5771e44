-- The latest runs of one pg_cron job, newest first, each with the counts that the
-- sweep recorded in learning.sweep_runs while it ran, matched by the job's backend pid.
-- Parameters: jobid, limit.
-- cron.job_run_details is indexed only on runid, so the scan walks runid backwards.
select
    d.runid,
    d.status,
    d.start_time,
    d.end_time,
    d.return_message,
    r.interrupted,
    r.batches
from cron.job_run_details as d
left join lateral (
    select
        pg_catalog.sum(sr.interrupted)::integer as interrupted,
        pg_catalog.sum(sr.batches)::integer as batches
    from learning.sweep_runs as sr
    where sr.backend_pid = d.job_pid
        and sr.started_at >= d.start_time - interval '1 minute'
        and sr.started_at <= coalesce(d.end_time, pg_catalog.now())
    having pg_catalog.count(*) > 0
) as r on true
where d.jobid = %(jobid)s
order by d.runid desc
limit %(limit)s;
