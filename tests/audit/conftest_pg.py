"""The URL of a database on the test PostgreSQL cluster (tests/audit/conftest.py starts it)."""


def pg_url(server, db: str) -> str:
    return f"postgresql+psycopg://postgres@/{db}?host={server['host']}&port={server['port']}"
