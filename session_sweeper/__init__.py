"""Interrupt reading sessions left hanging in active, inside PostgreSQL."""
