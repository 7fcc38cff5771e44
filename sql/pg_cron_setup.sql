-- The pg_cron prerequisites on this server: the package, the preload and its database.
select
    exists (
        select from pg_catalog.pg_available_extensions where name = 'pg_cron'
    ) as available,
    pg_catalog.current_setting('shared_preload_libraries')
        ~ '(^|[\s,])"?pg_cron"?($|[\s,])' as preloaded,
    pg_catalog.current_setting('cron.database_name', true) as cron_database,
    pg_catalog.current_database() as database
