"""Request limits under gunicorn: a gzip bomb is refused by its inflated size, in bounded memory."""

from __future__ import annotations

import gzip
import io

from tests.support.live_server import LiveServer, LiveServerFactory

TOKEN = "limits-write-token-0123456789"
LIMIT = 64 * 1024 * 1024
# Peak RSS a worker may reach; the bomb inflates to 16x LIMIT.
MEMORY_BOUND_MB = 200  # measured: 78 MB


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A JSON array padded with spaces: ~1000x smaller compressed than inflated."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as out:
        out.write(b"[")
        chunk = b" " * (1 << 20)
        for _ in range(inflated_bytes // len(chunk)):
            out.write(chunk)
        out.write(b"]")
    return buffer.getvalue()


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_a_gzip_bomb_gets_413_without_eating_memory(live_server_factory: LiveServerFactory) -> None:
    server: LiveServer = live_server_factory(
        env={"API_WRITE_TOKENS": TOKEN, "GUNICORN_WORKERS": "1", "MAX_CONTENT_LENGTH": str(LIMIT)},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    bomb = gzip_bomb(16 * LIMIT)
    assert len(bomb) < LIMIT // 50
    result = server.post_snapshot("payments", bomb, gzipped=True)
    assert result.status == 413, result.body[:300]
    assert result.json()["error"]["code"] == "payload_too_large"
    (worker,) = server.worker_pids()
    assert peak_rss_mb(worker) < MEMORY_BOUND_MB
    assert server.get_json("/syncs") == []
