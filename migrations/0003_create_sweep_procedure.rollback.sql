-- Drop the all-users sweep and its run history

drop procedure if exists learning.sweep_stale_sessions(integer, integer);
drop function if exists learning.interrupt_stale_batch(timestamptz, timestamptz, bigint, integer);
drop function if exists learning.record_sweep_run(bigint, integer, integer, boolean);
drop function if exists learning.start_sweep_run();
drop table if exists learning.sweep_runs;
