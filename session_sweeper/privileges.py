"""Hints that name the grant a superuser gives when a role lacks a privilege.

A schema owner that is not a superuser can run every command once a superuser
has created pg_cron and granted the privileges that pg_cron 1.4.2 gives only
to superusers. Each hint names the one statement that allows the failed step.
"""

from __future__ import annotations

import getpass
import os

from session_sweeper.dsn import Dsn

ALTER_JOB = "cron.alter_job(bigint, text, text, text, text, boolean)"
SCHEDULE_IN_DATABASE = (
    "cron.schedule_in_database(text, text, text, text, text, boolean)"
)


def role_of(dsn: Dsn) -> str:
    """Return the role the DSN logs in as, with libpq's defaults of PGUSER and the OS user."""
    return dsn.params.get("user") or os.environ.get("PGUSER") or getpass.getuser()


def _statement(message: str, role: str, database: str) -> str | None:
    """Return the statement a superuser runs to allow what message denies."""
    if "pg_read_all_settings" in message:
        return f"grant pg_read_all_settings to {role};"
    if 'create extension "pg_cron"' in message:
        return (
            f"create extension pg_cron; in database {database},"
            f" then grant usage on schema cron to {role};"
        )
    if "for schema cron" in message:
        return f"grant usage on schema cron to {role};"
    if "for function alter_job" in message:
        return f"grant execute on function {ALTER_JOB} to {role};"
    if "for function schedule_in_database" in message:
        return f"grant execute on function {SCHEDULE_IN_DATABASE} to {role};"
    if "to create role" in message or "CREATEROLE" in message:
        return "create role session_sweeper_app nologin;"
    return None


def privilege_hint(message: str, dsn: Dsn, hint: str | None = None) -> str | None:
    """Return a hint naming the superuser's grant, else hint, the server's own.

    PostgreSQL's hints for these errors name no statement, so a statement found for
    message replaces them. Matching uses PostgreSQL's and pg_cron's English message
    texts, so a server with another lc_messages gets only its own hint.
    """
    role = role_of(dsn)
    statement = _statement(message, role, dsn.dbname or role)
    if statement is not None:
        return f"Ask a superuser to run: {statement}"
    if hint:
        return hint
    if "permission denied" in message or "must be superuser" in message:
        return f"Ask a superuser to grant {role} the privilege named above."
    return None
