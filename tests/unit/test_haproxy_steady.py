"""SteadyTarget against a fake HAProxy admin socket that keeps servers' state like 2.6 does."""

from __future__ import annotations

import asyncio
import logging
import re
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from redkeeper.core.nodes import NodeFacts, NodesView
from redkeeper.errors import ApplyError, NutcrackerConfigError
from redkeeper.model import Address
from redkeeper.proxy.base import UNROUTED
from redkeeper.proxy.haproxy import RuntimeAPI, parse_servers_state
from redkeeper.proxy.haproxy.steady import SteadyTarget
from redkeeper.render import Layout, haproxy_plan, render_all
from redkeeper.render.haproxy import HAProxyPlan
from redkeeper.topology import parse_topology
from tests.support import default_in_mode

M1, R1, R2 = (Address("127.0.0.1", p) for p in (6666, 6667, 6668))
HEADER = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_port"


@dataclass
class Server:
    address: Address
    admin: int = 5  # `disabled` in the config: FMAINT | CMAINT
    op: int = 2


class FakeHAProxy(socketserver.ThreadingUnixStreamServer):
    """Enough of HAProxy's CLI for the agent: show servers state, set server, shutdown."""

    daemon_threads = True

    def __init__(self, path: Path, plan: HAProxyPlan, ignore_addr: bool = False) -> None:
        self.plan = plan
        self.ignore_addr = ignore_addr
        self.received: list[str] = []
        self.lock = threading.Lock()
        self.reset()
        super().__init__(str(path), _Handler)

    def reset(self) -> None:
        """What a freshly (re)started HAProxy has: the rendered config, all disabled."""
        self.servers: dict[tuple[str, str], Server] = {}
        for shard in self.plan.shards:
            self.servers[shard.backend, shard.server] = Server(shard.nodes[0].address)
            for node in shard.nodes:
                if shard.read_backend:
                    self.servers[shard.read_backend, node.name] = Server(node.address)

    def answer(self, line: str) -> str:
        words = line.split()
        if not words:  # a client that went away before sending (a cancelled save)
            return ""
        if line == "show servers state":
            rows = [
                f"1 {b} 1 {s} {v.address.host} {v.op} {v.admin} {v.address.port}"
                for (b, s), v in self.servers.items()
            ]
            return "\n".join(["1", HEADER, *rows]) + "\n\n"
        backend, _, name = words[2].partition("/") if words[0] == "set" else words[3].partition("/")
        server = self.servers.get((backend, name))
        if server is None:
            return "No such server.\n"
        if words[:2] == ["set", "server"] and words[3] == "addr":
            if not self.ignore_addr:
                server.address = Address(words[4], int(words[6]))
            return "IP changed from 'x' to 'y' by 'stats socket command'\n"
        if words[3:] == ["state", "ready"]:
            server.admin &= ~1
        elif words[3:] == ["state", "maint"]:
            server.admin |= 1
        return "\n"


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, FakeHAProxy)
        line = self.rfile.readline().decode().strip()
        with server.lock:
            server.received.append(line)
            self.wfile.write(server.answer(line).encode())


TOPOLOGY = default_in_mode("steady")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FakeHAProxy, SteadyTarget]]:
    topology = parse_topology(TOPOLOGY, source="t.yaml", base_dir=tmp_path)
    layout = Layout.for_local(tmp_path / "s")
    plan = haproxy_plan(topology, layout)
    plan.admin_socket.parent.mkdir(parents=True)
    pool = next(f for f in render_all(topology, layout, units=False) if f.path.name.endswith("yml"))
    pool.path.parent.mkdir(parents=True)
    pool.path.write_text(pool.text)
    fake = FakeHAProxy(plan.admin_socket, plan)
    thread = threading.Thread(target=fake.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    target = SteadyTarget(plan, RuntimeAPI(plan.admin_socket), nutcracker_config=pool.path)
    try:
        yield fake, target
    finally:
        fake.shutdown()
        fake.server_close()


def test_apply_repoints_verifies_and_saves_the_state(
    setup: tuple[FakeHAProxy, SteadyTarget],
) -> None:
    fake, target = setup
    asyncio.run(target.prepare())
    assert asyncio.run(target.routes()) == {"shard1": UNROUTED, "shard2": UNROUTED}  # fail closed
    fake.received.clear()

    async def apply() -> None:
        outcome = await target.apply({"shard1": R1})
        assert outcome.written and outcome.restart is None  # no restart, ever
        await target.save_state()  # written off the apply's path

    asyncio.run(apply())
    assert asyncio.run(target.routes())["shard1"] == R1
    assert fake.received[:-1] == [
        "show servers state",
        "set server shard1/master addr 127.0.0.1 port 6667",
        "set server shard1/master state ready",
        "set server shard1/master health up",
        "shutdown sessions server shard1/master",
        "show servers state",  # verify
        "show servers state",  # the dump for the server-state file
    ]
    saved = parse_servers_state(target.plan.state_file.read_text())
    assert any(r.backend == "shard1" and r.address == R1 and not r.maint for r in saved)


def test_a_restarted_haproxy_is_reported_unrouted_and_warned_once(
    setup: tuple[FakeHAProxy, SteadyTarget], caplog: pytest.LogCaptureFixture
) -> None:
    fake, target = setup

    async def apply() -> None:
        await target.apply({"shard1": R1, "shard2": Address("127.0.0.1", 7666)})
        await target.save_state()

    asyncio.run(apply())
    fake.reset()  # HAProxy restarted without the agent: rendered addresses, disabled
    with caplog.at_level(logging.WARNING, "redkeeper.agent"):
        assert asyncio.run(target.routes()) == {"shard1": UNROUTED, "shard2": UNROUTED}
    assert "HAProxy no longer routes shard1 (was 127.0.0.1:6667)" in caplog.text
    assert "HAProxy no longer routes shard2 (was 127.0.0.1:7666)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "redkeeper.agent"):
        assert asyncio.run(target.routes()) == {"shard1": UNROUTED, "shard2": UNROUTED}
    assert "no longer routes" not in caplog.text  # forgotten: the next apply re-routes them


def test_a_repoint_haproxy_does_not_show_is_an_error(
    setup: tuple[FakeHAProxy, SteadyTarget],
) -> None:
    fake, target = setup
    fake.ignore_addr = True
    with pytest.raises(
        ApplyError, match=re.escape("shard1: HAProxy reports 127.0.0.1:6666, expected")
    ):
        asyncio.run(target.apply({"shard1": R1}))


def test_another_config_or_pool_file_is_refused(setup: tuple[FakeHAProxy, SteadyTarget]) -> None:
    fake, target = setup
    del fake.servers["shard2:read", "shard2-3"]
    with pytest.raises(ApplyError, match="has no shard2:read/shard2-3"):
        asyncio.run(target.routes())
    assert target.nutcracker_config is not None
    text = target.nutcracker_config.read_text().replace("127.0.0.1:22131:1", "127.0.0.1:6666:1")
    target.nutcracker_config.write_text(text)
    with pytest.raises(NutcrackerConfigError, match=re.escape("shard1 -> 127.0.0.1:6666")):
        asyncio.run(target.prepare())


def test_haproxy_down_at_start_is_not_fatal(tmp_path: Path) -> None:
    topology = parse_topology(TOPOLOGY, source="t.yaml", base_dir=tmp_path)
    plan = haproxy_plan(topology, Layout.for_local(tmp_path))
    target = SteadyTarget(plan, RuntimeAPI(plan.admin_socket, timeout=0.2))
    asyncio.run(target.prepare())  # logs, and the cycles keep trying
    with pytest.raises(ApplyError):
        asyncio.run(target.routes())


def test_sync_pools_follows_node_facts_and_sentinel_flags(
    setup: tuple[FakeHAProxy, SteadyTarget],
) -> None:
    fake, target = setup
    facts = {
        M1: NodeFacts("master"),  # a returning old master
        R1: NodeFacts("master"),
        R2: NodeFacts("slave", R1, "connected"),
    }

    async def scenario() -> None:
        await target.apply({"shard1": R1, "shard2": Address("127.0.0.1", 7666)})
        assert await target.repair(NodesView(facts)) is None  # nothing started
        await target.save_state()
        ready = {k for k, v in fake.servers.items() if "read" in k[0] and not v.admin & 1}
        assert ready == {("shard1:read", "shard1-3")}
        fake.received.clear()
        await target.sync_pools(NodesView(facts))
        assert fake.received == ["show servers state"]  # converged: nothing to change
        await target.sync_pools(NodesView(facts, {"shard1": {R2}}))  # a Sentinel flags R2
        await target.save_state()
        assert fake.servers["shard1:read", "shard1-3"].admin & 1
        assert "shutdown sessions server shard1:read/shard1-3" in fake.received
        fake.received.clear()
        assert await target.repair(None) is None  # no facts yet: pools left alone
        assert fake.received == []

    asyncio.run(scenario())
