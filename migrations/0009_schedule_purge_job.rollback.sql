-- Unschedule the job purge-sweep-run-details
-- With pg_cron in another database, session-sweeper rollback unschedules it there.

do $$
begin
    if pg_catalog.to_regclass('cron.job') is null then
        return;
    end if;

    if exists (select from cron.job where jobname = 'purge-sweep-run-details') then
        perform cron.unschedule('purge-sweep-run-details');
    end if;
end
$$;
