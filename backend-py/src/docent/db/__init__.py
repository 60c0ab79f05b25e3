"""Engine, tables, gateways, migrations and the embedded PostgreSQL launcher."""
