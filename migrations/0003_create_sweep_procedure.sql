-- Create the all-users sweep learning.sweep_stale_sessions() and its run history
-- depends: 0002_create_interrupt_function

create table if not exists learning.sweep_runs (
    id bigint generated always as identity
        constraint sweep_runs_pkey primary key,
    started_at timestamptz not null default pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    cutoff timestamptz not null,
    batch_size integer not null,
    interrupted integer not null default 0,
    -- Transactions that interrupted at least one session.
    batches integer not null default 0,
    -- The application_name of the session that ran the sweep: pg_cron, the CLI or psql.
    run_by text not null default pg_catalog.current_setting('application_name'),
    -- cron.job_run_details.job_pid of a pg_cron run. Its start_time can be later than
    -- this row's started_at, because the scheduler records it after the job starts.
    backend_pid integer not null default pg_catalog.pg_backend_pid()
);

comment on table learning.sweep_runs is
    'One row for each run of the sweep, updated after every batch it commits.';

create index if not exists sweep_runs_started_at_idx
    on learning.sweep_runs (started_at);

create or replace function learning.start_sweep_run(
    out run_id bigint,
    out cutoff timestamptz,
    out batch_size integer
)
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    cutoff := learning.stale_cutoff();

    select s.sweep_batch_size
    into batch_size
    from learning.settings as s;

    insert into learning.sweep_runs (cutoff, batch_size)
    values (cutoff, batch_size)
    returning id into run_id;
end
$$;

comment on function learning.start_sweep_run() is
    'Records the start of a sweep run and returns its id, cutoff and batch size.';

create or replace function learning.record_sweep_run(
    p_run_id bigint,
    p_interrupted integer,
    p_batches integer,
    p_finished boolean
)
returns void
language sql
set search_path = pg_catalog, learning
as $$
    update learning.sweep_runs
    set interrupted = p_interrupted,
        batches = p_batches,
        finished_at = case when p_finished then pg_catalog.clock_timestamp() end
    where id = p_run_id
$$;

comment on function learning.record_sweep_run(bigint, integer, integer, boolean) is
    'Stores the progress of a sweep run, and its end when p_finished is true.';

-- One batch of the sweep. It walks sessions_active_sweep_key_id_idx upwards from the
-- key after (p_after_key, p_after_id), so no batch rescans what an earlier batch of the
-- same run passed, and it returns the greatest key it interrupted.
create or replace function learning.interrupt_stale_batch(
    p_cutoff timestamptz,
    p_after_key timestamptz,
    p_after_id bigint,
    p_limit integer,
    out interrupted integer,
    out last_key timestamptz,
    out last_id bigint
)
language plpgsql
set search_path = pg_catalog, learning
as $$
begin
    -- FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE lock that the
    -- ownership key takes on event inserts. SKIP LOCKED leaves a row that a write is
    -- touching to that write, so the sweep never makes the write wait for it.
    --
    -- The update finds the picked rows by id = any (array), not by a join. The planner
    -- expects a whole batch from picked, and on a table of 100,000 sessions it joined
    -- 1,000 rows by hashing a sequential scan of the table, once for every batch.
    with picked as (
        select s.id
        from learning.sessions as s
        where s.status = 'active'
            and s.sweep_key < p_cutoff
            and (s.sweep_key, s.id) > (p_after_key, p_after_id)
            and s.last_event_at < p_cutoff
        order by s.sweep_key, s.id
        limit p_limit
        for no key update of s skip locked
    ),
    done as (
        update learning.sessions as s
        set status = 'interrupted',
            ended_at = s.last_event_at
        where s.id = any (array(select picked.id from picked))
        returning s.sweep_key, s.id
    )
    select pg_catalog.count(*) over ()::integer, d.sweep_key, d.id
    into interrupted, last_key, last_id
    from done as d
    order by d.sweep_key desc, d.id desc
    limit 1;

    if not found then
        interrupted := 0;
    end if;
end
$$;

comment on function learning.interrupt_stale_batch(timestamptz, timestamptz, bigint, integer) is
    'Interrupts up to p_limit stale sessions after a key of the sweep index.';

-- A procedure, so it can commit after each batch and no transaction locks more than
-- one batch of rows. PostgreSQL rejects COMMIT in a procedure that has a SET clause, so
-- this one has none. Its body only calls the functions above, which set search_path,
-- and it names every object with its schema.
create or replace procedure learning.sweep_stale_sessions(
    inout interrupted integer default null,
    inout batches integer default null
)
language plpgsql
as $$
declare
    v_run record;
    v_batch record;
    v_after_key timestamptz := '-infinity';
    v_after_id bigint := -9223372036854775808;
begin
    interrupted := 0;
    batches := 0;
    select * into v_run from learning.start_sweep_run();
    commit;

    loop
        select *
        into v_batch
        from learning.interrupt_stale_batch(
            v_run.cutoff, v_after_key, v_after_id, v_run.batch_size
        );
        exit when v_batch.interrupted = 0;

        interrupted := interrupted + v_batch.interrupted;
        batches := batches + 1;
        perform learning.record_sweep_run(v_run.run_id, interrupted, batches, false);
        commit;

        -- A short batch means the walk reached the cutoff.
        exit when v_batch.interrupted < v_run.batch_size;
        v_after_key := v_batch.last_key;
        v_after_id := v_batch.last_id;
    end loop;

    perform learning.record_sweep_run(v_run.run_id, interrupted, batches, true);
    commit;
end
$$;

comment on procedure learning.sweep_stale_sessions(integer, integer) is
    'Interrupts the stale sessions of every user in batches, and returns the count and batches.';

-- Run each function once, so that a wrong column name fails this migration and not the
-- first job run. The cutoff of -infinity matches no session, and the check's run row is
-- removed again.
do $$
declare
    v_run record;
begin
    select * into v_run from learning.start_sweep_run();
    perform learning.interrupt_stale_batch('-infinity', '-infinity', 0, 1);
    perform learning.record_sweep_run(v_run.run_id, 0, 0, true);
    delete from learning.sweep_runs where id = v_run.run_id;
end
$$;
