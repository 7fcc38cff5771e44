-- The database that pg_cron runs in, read without an error by roles that cannot read
-- its setting.
-- pg_settings leaves out cron.database_name for roles that are neither superusers
-- nor members of pg_read_all_settings, so readable separates a hidden setting from an
-- unset one. CREATE EXTENSION pg_cron works only in the database the setting names,
-- so installed_here shows that this is pg_cron's database.
select
    (
        select s.setting
        from pg_catalog.pg_settings as s
        where s.name = 'cron.database_name'
    ) as database_name,
    pg_catalog.pg_has_role('pg_read_all_settings', 'usage') as readable,
    exists (
        select
        from pg_catalog.pg_extension as e
        where e.extname = 'pg_cron'
    ) as installed_here;
