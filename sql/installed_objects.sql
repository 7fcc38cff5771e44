-- Every object in schema learning with its definition as the catalog prints it, for
-- session-sweeper verify. Run it with search_path = pg_catalog, so that names print
-- qualified the same way on every server.
select
    'function ' || p.oid::regprocedure::text as name,
    pg_catalog.pg_get_functiondef(p.oid) as definition
from pg_catalog.pg_proc as p
where p.pronamespace = 'learning'::regnamespace
union all
select
    'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text,
    pg_catalog.pg_get_triggerdef(t.oid)
from pg_catalog.pg_trigger as t
join pg_catalog.pg_class as c
    on c.oid = t.tgrelid
where c.relnamespace = 'learning'::regnamespace
    and not t.tgisinternal
union all
select
    'index ' || i.indexrelid::regclass::text,
    pg_catalog.pg_get_indexdef(i.indexrelid)
from pg_catalog.pg_index as i
join pg_catalog.pg_class as c
    on c.oid = i.indrelid
where c.relnamespace = 'learning'::regnamespace
union all
select
    'constraint ' || k.conname || ' on ' || k.conrelid::regclass::text,
    pg_catalog.pg_get_constraintdef(k.oid)
from pg_catalog.pg_constraint as k
where k.connamespace = 'learning'::regnamespace
union all
select
    'view ' || c.oid::regclass::text,
    pg_catalog.pg_get_viewdef(c.oid)
from pg_catalog.pg_class as c
where c.relnamespace = 'learning'::regnamespace
    and c.relkind = 'v'
union all
select
    'table ' || c.oid::regclass::text,
    pg_catalog.string_agg(
        a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
            || case when a.attnotnull then ' not null' else '' end
            || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
            || case when a.attgenerated = 's' then ' generated' else '' end,
        ', '
        order by a.attnum
    )
from pg_catalog.pg_class as c
join pg_catalog.pg_attribute as a
    on a.attrelid = c.oid
    and a.attnum > 0
    and not a.attisdropped
left join pg_catalog.pg_attrdef as d
    on d.adrelid = c.oid
    and d.adnum = a.attnum
where c.relnamespace = 'learning'::regnamespace
    and c.relkind = 'r'
group by c.oid
order by name;
