-- Drop the view learning.sweep_run_history

drop view if exists learning.sweep_run_history;
