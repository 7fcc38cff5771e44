insert into {table} (session_id, user_id, event_type, occurred_at, payload)
select %(session_id)s, %(user_id)s, e.event_type, e.occurred_at, e.payload
from unnest(%(event_types)s::text[], %(occurred_at)s::timestamptz[], %(payloads)s::jsonb[])
    as e (event_type, occurred_at, payload)
