-- The counts that the sweep recorded in learning.sweep_runs during each pg_cron run.
-- A sweep run belongs to the pg_cron run with its backend pid (job_pid) whose span
-- contains its start. The scheduler can record start_time a moment after the job's
-- backend started, so the span opens a minute early. The runs come in as arrays
-- because cron.job_run_details may live in another database. Each one is a range scan
-- of sweep_runs_started_at_idx.
-- Parameters: runids, pids, starts, ends (arrays of the same length).
select
    w.runid,
    pg_catalog.sum(sr.interrupted)::integer as interrupted,
    pg_catalog.sum(sr.batches)::integer as batches,
    pg_catalog.string_agg(distinct sr.run_by, ', ') as run_by
from rows from (
    pg_catalog.unnest(%(runids)s::bigint[]),
    pg_catalog.unnest(%(pids)s::integer[]),
    pg_catalog.unnest(%(starts)s::timestamptz[]),
    pg_catalog.unnest(%(ends)s::timestamptz[])
) as w (runid, job_pid, start_time, end_time)
join learning.sweep_runs as sr
    on sr.backend_pid = w.job_pid
    and sr.started_at >= w.start_time - interval '1 minute'
    and sr.started_at <= coalesce(w.end_time, pg_catalog.now())
group by w.runid;
