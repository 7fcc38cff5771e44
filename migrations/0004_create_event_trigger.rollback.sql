-- Drop the event trigger and the final-state guard

drop trigger if exists sessions_keep_final_state on learning.sessions;
drop function if exists learning.tg_sessions__keep_final_state();
drop trigger if exists reading_events_touch_sessions on learning.reading_events;
drop function if exists learning.tg_reading_events__touch_sessions();
