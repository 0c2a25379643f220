"""The Runtime API client: `show servers state` parsing, replies, errors, bounded waits."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redkeeper.errors import ApplyError
from redkeeper.model import Address
from redkeeper.proxy.haproxy import (
    HAProxyCommandError,
    HAProxyUnavailableError,
    RuntimeAPI,
    parse_servers_state,
)

HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port"
)
# Verbatim from HAProxy 2.6.12: a shard's server set by the agent, a read server in
# maintenance (disabled in the config: FMAINT|CMAINT), one that is ready but DOWN.
REAL = f"""1
{HEADER}
3 shard1 1 master 127.0.0.1 2 4 1 1 12 15 3 4 6 0 0 0 - 6667 - 0 0 - - 0
4 shard1:read 1 shard1-1 127.0.0.1 0 5 1 1 12 1 0 0 14 0 0 0 - 6666 - 0 0 - - 0
4 shard1:read 2 shard1-2 127.0.0.1 0 4 1 1 3 13 2 0 6 0 0 0 - 6668 - 0 0 - - 0

"""


def test_parse_real_show_servers_state() -> None:
    rows = parse_servers_state(REAL)
    assert [(r.backend, r.server, r.address) for r in rows] == [
        ("shard1", "master", Address("127.0.0.1", 6667)),
        ("shard1:read", "shard1-1", Address("127.0.0.1", 6666)),
        ("shard1:read", "shard1-2", Address("127.0.0.1", 6668)),
    ]
    master, maint, down = rows
    assert master.routable and master.state == "UP" and not master.maint  # CMAINT alone
    assert maint.maint and maint.state == "MAINT" and not maint.routable
    assert not down.maint and down.state == "DOWN" and not down.routable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("2\n# be_name\n", "unknown format"),
        ("1\n3 shard1 1 master\n", "no header"),
        ("1\n# be_id be_name srv_name\n", "lacks"),
        (f"1\n{HEADER}\n3 shard1 1 master 127.0.0.1\n", "fields"),
        (f"1\n{HEADER}\n3 s 1 m 127.0.0.1 up 4 1 1 1 1 1 1 1 0 0 0 - 1 - 0 0 - - 0\n", "line 3"),
    ],
)
def test_parse_rejects_what_it_does_not_know(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_servers_state(text)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode().strip()
        server = self.server
        assert isinstance(server, FakeSocket)
        server.received.append(line)
        self.wfile.write(server.answer(line).encode())


class FakeSocket(socketserver.ThreadingUnixStreamServer):
    """An admin socket answering with `answer(command)`, then closing (like HAProxy)."""

    daemon_threads = True

    def __init__(self, path: Path, answer: Callable[[str], str]) -> None:
        self.answer = answer
        self.received: list[str] = []
        super().__init__(str(path), _Handler)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeSocket, RuntimeAPI]]:
    path = tmp_path / "admin.sock"

    def answer(command: str) -> str:
        if command == "show servers state":
            return REAL
        if command.startswith("set server shard1/master addr"):
            return "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'\n"
        if command.startswith("set server nope/"):
            return "No such backend.\n"
        if command == "frobnicate":
            return "Unknown command: 'frobnicate'\n"
        return "\n"

    server = FakeSocket(path, answer)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server, RuntimeAPI(path, timeout=1.0)
    finally:
        server.shutdown()
        server.server_close()


def test_async_and_sync_commands(fake: tuple[FakeSocket, RuntimeAPI]) -> None:
    server, api = fake

    async def scenario() -> None:
        assert len(await api.servers_state()) == 3
        await api.set_address("shard1", "master", Address("127.0.0.2", 6667))
        await api.set_state("shard1:read", "shard1-2", "maint")
        await api.set_health_up("shard1", "master")
        await api.shutdown_sessions("shard1", "master")
        with pytest.raises(HAProxyCommandError, match="No such backend"):
            await api.set_state("nope", "x", "ready")
        with pytest.raises(HAProxyCommandError, match="Unknown command"):
            await api.execute("frobnicate")

    asyncio.run(scenario())
    assert len(asyncio.run(api.servers_state())) == 3
    assert server.received[1:5] == [
        "set server shard1/master addr 127.0.0.2 port 6667",
        "set server shard1:read/shard1-2 state maint",
        "set server shard1/master health up",
        "shutdown sessions server shard1/master",
    ]


def test_one_line_only(fake: tuple[FakeSocket, RuntimeAPI]) -> None:
    _server, api = fake
    for bad in ("show info; shutdown frontend x", "show info\nshow stat", ""):
        with pytest.raises(ValueError, match="single"):
            asyncio.run(api.execute(bad))


def test_no_socket_is_unavailable(tmp_path: Path) -> None:
    api = RuntimeAPI(tmp_path / "missing.sock", timeout=0.2)
    with pytest.raises(HAProxyUnavailableError, match=r"missing\.sock"):
        asyncio.run(api.servers_state())


def test_a_hung_haproxy_is_bounded(tmp_path: Path) -> None:
    """Accepts the connection but never answers (a SIGSTOPped HAProxy): both clients give up
    after `timeout`."""
    path = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(8)
        api = RuntimeAPI(path, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(HAProxyUnavailableError, match="no answer"):
            asyncio.run(api.execute("show servers state"))
        assert time.monotonic() - started < 1.5
    assert issubclass(HAProxyUnavailableError, ApplyError)
