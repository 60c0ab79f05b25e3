"""The SQLModel tables mirror the migrations: same columns, nullability and types."""

import psycopg
from sqlalchemy.dialects import postgresql
from sqlmodel import SQLModel

import docent.db.models  # noqa: F401 (registers the tables)

_TYPE_NAMES = {
    "VARCHAR": "text",
    "TEXT": "text",
    "UUID": "uuid",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "BYTEA": "bytea",
    "JSONB": "jsonb",
    "DATE": "date",
    "FLOAT": "double precision",
    "DOUBLE_PRECISION": "double precision",
    "TSVECTOR": "tsvector",
    "VECTOR(384)": "USER-DEFINED",
    "TEXT[]": "ARRAY",
    "BOOLEAN": "boolean",
}


def test_every_model_matches_its_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select table_name, column_name, is_nullable = 'YES', data_type"
            " from information_schema.columns where table_schema = 'public'"
        ).fetchall()
    database: dict[str, dict[str, tuple[bool, str]]] = {}
    for table, column, nullable, data_type in rows:
        database.setdefault(table, {})[column] = (nullable, data_type)

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for table in SQLModel.metadata.sorted_tables:
        model = {
            column.name: (bool(column.nullable), _TYPE_NAMES.get(str(column.type.compile(dialect)), "?"))
            for column in table.columns
        }
        assert model == database[table.name], table.name
