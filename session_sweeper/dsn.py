"""Parse, mask and connect with the DSN from --dsn or DATABASE_URL."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import psycopg
from psycopg import conninfo

logger = logging.getLogger(__name__)

APPLICATION_NAME = "session-sweeper"


class DsnError(ValueError):
    """A connection string that libpq cannot parse."""


class ConnectError(RuntimeError):
    """A connection that failed, with its message free of any password."""


class Dsn:
    """A parsed connection string that never shows its password."""

    def __init__(self, text: str):
        try:
            self.params = conninfo.conninfo_to_dict(text)
        except psycopg.ProgrammingError:
            # libpq's message quotes part of the string, which may be the password.
            raise DsnError(
                "invalid connection string: expected a postgresql:// URI "
                "or key=value pairs such as 'host=localhost dbname=app'"
            ) from None
        self.params.setdefault("application_name", APPLICATION_NAME)

    @property
    def password(self) -> str | None:
        return self.params.get("password")

    @property
    def dbname(self) -> str | None:
        return self.params.get("dbname")

    def masked(self) -> str:
        """Return the connection string with the password replaced by ***."""
        first = ("host", "port", "dbname", "user")
        shown = {k: self.params[k] for k in first if k in self.params}
        for key, value in self.params.items():
            if key not in shown and key not in ("application_name", "password"):
                shown[key] = value
        if "password" in self.params:
            shown["password"] = "***"
        return conninfo.make_conninfo(**shown)

    def scrub(self, message: str) -> str:
        """Return message with every copy of the password replaced by ***."""
        if self.password:
            return message.replace(self.password, "***")
        return message

    def with_params(self, **params: str) -> Dsn:
        """Return a copy of this DSN with params set or replaced."""
        copy = Dsn.__new__(Dsn)
        copy.params = {**self.params, **params}
        return copy

    def conninfo(self) -> str:
        return conninfo.make_conninfo(**self.params)

    def yoyo_uri(self) -> str:
        """Return the URI that yoyo needs to connect with psycopg 3.

        yoyo passes query parameters on to psycopg.connect, so every libpq
        parameter, a unix socket folder and a quoted password included, goes
        in the query string unchanged.
        """
        return "postgresql+psycopg:///?" + urlencode(self.params)

    def connect(self, **kwargs) -> psycopg.Connection:
        """Open a connection, raising ConnectError with a masked message."""
        try:
            return psycopg.connect(self.conninfo(), **kwargs)
        except psycopg.OperationalError as error:
            raise ConnectError(
                f"could not connect to {self.masked()}: {self.scrub(first_line(error))}"
            ) from None


def first_line(error: BaseException) -> str:
    """Return the first non-empty line of an error's message."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
