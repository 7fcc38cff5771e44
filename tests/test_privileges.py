"""Least privilege: search_path on every function, and what the app role can do.

The app's login role is a member of the group role session_sweeper_app that
the migrations create. The test server trusts local logins, so it connects
without a password.
"""

import psycopg
import pytest
from psycopg import conninfo, errors

APP_ROLE = "session_sweeper_app"
APP_LOGIN = "sweeper_app_login"
SEARCH_PATH = "search_path=pg_catalog, learning"
# PostgreSQL rejects COMMIT in a procedure that has a SET clause, and the sweep
# commits after each batch.
NO_SET_CLAUSE = {"sweep_stale_sessions"}
# The sweep and its steps touch every user's sessions and write the run history.
OWNER_ONLY = {
    "sweep_stale_sessions",
    "start_sweep_run",
    "record_sweep_run",
    "interrupt_stale_batch",
}


@pytest.fixture
def app(db, sweeper_dsn):
    """Open an autocommit connection as a login role granted the app role."""
    db.execute(
        "do $$ begin"
        f" if not exists (select from pg_roles where rolname = '{APP_LOGIN}') then"
        f" create role {APP_LOGIN} login; end if; end $$"
    )
    db.execute(f"grant {APP_ROLE} to {APP_LOGIN}")
    with psycopg.connect(
        conninfo.make_conninfo(sweeper_dsn, user=APP_LOGIN), autocommit=True
    ) as conn:
        yield conn


def functions(db):
    """Return (name, proconfig, security definer, oid) of every routine in learning."""
    return db.execute(
        "select p.proname, p.proconfig, p.prosecdef, p.oid"
        " from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
        " where n.nspname = 'learning'"
        " order by p.proname"
    ).fetchall()


def add_session(db, user_id, last_event_ago="1 second"):
    return db.execute(
        "insert into learning.sessions (user_id, started_at, last_event_at)"
        " values (%s, now() - %s::interval, now() - %s::interval) returning id",
        [user_id, last_event_ago, last_event_ago],
    ).fetchone()[0]


def test_functions_set_search_path(db):
    without = [
        name
        for name, config, _, _ in functions(db)
        if SEARCH_PATH not in (config or [])
    ]

    assert set(without) == NO_SET_CLAUSE, (
        f"every routine but the sweep procedure must set {SEARCH_PATH}: {without}"
    )


def test_security_definer_functions_not_public(db):
    definers = [(name, oid) for name, _, definer, oid in functions(db) if definer]
    public = [
        name
        for name, oid in definers
        if db.execute(
            "select has_function_privilege('public', %s, 'execute')", [oid]
        ).fetchone()[0]
    ]

    assert "interrupt_stale_sessions" in [n for n, _ in definers], (
        "interrupt_stale_sessions must run with the owner's rights for the app role"
    )
    assert "tg_reading_events__touch_sessions" in [n for n, _ in definers], (
        "the event trigger must run with the owner's rights for the app role"
    )
    assert public == [], f"security definer functions executable by public: {public}"


def test_sweep_functions_not_public(db):
    for name, _, _, oid in functions(db):
        if name not in OWNER_ONLY:
            continue
        public = db.execute(
            "select has_function_privilege('public', %s, 'execute')", [oid]
        ).fetchone()[0]
        assert not public, f"{name} must not be executable by public"


def test_app_role_table_privileges_exact(db):
    granted = db.execute(
        "select c.relname, p.privilege_type"
        " from pg_class as c"
        " join pg_namespace as n on n.oid = c.relnamespace,"
        " lateral (select unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE',"
        "   'TRUNCATE', 'REFERENCES', 'TRIGGER']) as privilege_type) as p"
        " where n.nspname = 'learning' and c.relkind in ('r', 'p', 'v', 'S')"
        "   and has_table_privilege(%s, c.oid, p.privilege_type)"
        " order by 1, 2",
        [APP_ROLE],
    ).fetchall()

    assert granted == [("reading_events", "INSERT"), ("sessions", "SELECT")], (
        f"the app role must have only INSERT on events and SELECT on sessions: {granted}"
    )


def test_app_role_is_nologin(db):
    login = db.execute(
        "select rolcanlogin from pg_roles where rolname = %s", [APP_ROLE]
    ).fetchone()

    assert login == (False,), "the app role must be a NOLOGIN group role"


def test_app_insert_touches_and_cleans_up(db, app):
    fresh = add_session(db, "reader", "5 minutes")
    stale = add_session(db, "reader", "2 hours")

    app.execute(
        "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
        " values (%s, 'reader', 'page', now())",
        [fresh],
    )
    rows = {
        session_id: (status, recent)
        for session_id, status, recent in db.execute(
            "select id, status, last_event_at > now() - interval '1 minute'"
            " from learning.sessions"
        )
    }

    assert rows[fresh] == ("active", True), "the app's insert did not touch its session"
    assert rows[stale][0] == "interrupted", (
        "the app's insert did not clean up a stale session"
    )


def test_app_calls_interrupt_stale_sessions(db, app):
    add_session(db, "reader", "2 hours")

    count = app.execute(
        "select learning.interrupt_stale_sessions('reader')"
    ).fetchone()[0]

    assert count == 1, (
        "the app role could not interrupt a stale session through the function"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "update learning.sessions set status = 'interrupted'",
        "update learning.sessions set last_event_at = now()",
        "delete from learning.sessions",
        "insert into learning.sessions (user_id) values ('reader')",
        "delete from learning.reading_events",
        "select * from learning.reading_events",
        "update learning.settings set idle_timeout = '1 minute'",
        "call learning.sweep_stale_sessions()",
        "select learning.start_sweep_run()",
        "select learning.interrupt_stale_batch('infinity', '-infinity', 0, 1000)",
        "select learning.record_sweep_run(1, 0, 0, true)",
    ],
)
def test_app_denied_beyond_its_grants(db, app, statement):
    add_session(db, "reader", "2 hours")

    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)

    active = db.execute(
        "select count(*) from learning.sessions where status = 'active'"
    ).fetchone()[0]
    assert active == 1, f"a denied statement changed a session: {statement}"


def test_app_cannot_reach_other_users_session(db, app):
    theirs = add_session(db, "other", "2 hours")
    before = db.execute(
        "select status, last_event_at from learning.sessions where id = %s", [theirs]
    ).fetchone()

    with pytest.raises(errors.ForeignKeyViolation):
        app.execute(
            "insert into learning.reading_events (session_id, user_id, event_type, occurred_at)"
            " values (%s, 'reader', 'page', now())",
            [theirs],
        )
    count = app.execute(
        "select learning.interrupt_stale_sessions('reader')"
    ).fetchone()[0]
    after = db.execute(
        "select status, last_event_at from learning.sessions where id = %s", [theirs]
    ).fetchone()
    events = db.execute("select count(*) from learning.reading_events").fetchone()[0]

    assert events == 0, "an event for another user's session was stored"
    assert count == 0, "interrupt_stale_sessions touched another user's session"
    assert after == before, "another user's session changed"
