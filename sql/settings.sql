-- The settings in force, as one JSON object, so that a database whose newer
-- migrations are rolled back still returns the columns it has.
select pg_catalog.to_jsonb(s) - 'singleton' as settings
from learning.settings as s;
