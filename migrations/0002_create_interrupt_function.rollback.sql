-- Drop learning.interrupt_stale_sessions and the settings row

do $$
declare
    v_changed boolean;
begin
    if pg_catalog.to_regclass('learning.settings') is null then
        return;
    end if;

    select s.idle_timeout <> interval '30 minutes' or s.sweep_batch_size <> 1000
    into v_changed
    from learning.settings as s;

    if v_changed
        and pg_catalog.current_setting('session_sweeper.allow_drop_data', true)
            is distinct from 'on'
    then
        raise exception 'rollback would drop settings changed from their defaults'
            using errcode = 'object_in_use',
                detail = 'learning.settings holds values that an operator set.',
                hint = 'Note the values in learning.settings, then run the rollback '
                    'again with --drop-data.';
    end if;
end
$$;

drop function if exists learning.interrupt_stale_sessions(text);
drop function if exists learning.stale_cutoff();
drop table if exists learning.settings;
drop function if exists learning.tg_settings__validate();
