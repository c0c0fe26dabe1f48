"""The core's tests use the fixtures of ``enrolkit.testing`` (a pytest11 plugin), the same ones
plugin authors get: ``site``, ``db_site`` (SQLite and PostgreSQL), ``cli``, ``clock``, ..."""
