"""Unit tests of `redkeeper.data.masters`: a majority of Sentinels, highest epoch, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from redkeeper.core import MasterReport, SentinelAnswer
from redkeeper.data import current_masters
from redkeeper.data.masters import decide_masters_or_explain as decide_masters
from redkeeper.errors import SentinelError
from redkeeper.model import Address
from redkeeper.stack import probe
from redkeeper.topology import Topology, parse_topology

S = [Address("127.0.0.1", 26379 + i) for i in range(3)]
A1, B1 = Address("127.0.0.1", 6666), Address("127.0.0.1", 6667)
A2 = Address("127.0.0.1", 7666)

TOPOLOGY = """
sentinel: {nodes: [127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381]}
shards:
  - {name: shard1, master: 127.0.0.1:6666, replicas: [127.0.0.1:6667]}
  - {name: shard2, master: 127.0.0.1:7666, replicas: [127.0.0.1:7667]}
"""


@pytest.fixture
def topo(tmp_path: Path) -> Topology:
    return parse_topology(TOPOLOGY, source="t.yaml", base_dir=tmp_path)


def answer(sentinel: Address, **masters: tuple[Address, int]) -> SentinelAnswer:
    reports = {
        name: MasterReport(sentinel, name, address, epoch, frozenset({"master"}), 2, 2)
        for name, (address, epoch) in masters.items()
    }
    return SentinelAnswer(sentinel, reports)


def silent(sentinel: Address) -> SentinelAnswer:
    return SentinelAnswer(sentinel, None, "did not answer")


def test_highest_epoch_wins_among_a_majority(topo: Topology) -> None:
    answers = [
        answer(S[0], shard1=(B1, 5), shard2=(A2, 0)),
        answer(S[1], shard1=(A1, 4), shard2=(A2, 0)),
        silent(S[2]),
    ]
    masters = decide_masters(topo, answers)
    assert masters.addresses == {"shard1": B1, "shard2": A2}
    assert masters.epochs == {"shard1": 5, "shard2": 0}
    assert (masters.answered, masters.configured) == (2, 3)
    assert masters["shard1"] == B1


def test_no_majority_names_the_silent_sentinels(topo: Topology) -> None:
    answers = [answer(S[0], shard1=(A1, 0), shard2=(A2, 0)), silent(S[1]), silent(S[2])]
    with pytest.raises(SentinelError) as caught:
        decide_masters(topo, answers)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("only 1 of 3 Sentinels answered (2 needed)")
    assert "sentinel-2 (127.0.0.1:26380), sentinel-3 (127.0.0.1:26381)" in message
    assert "(fix: start them or check `redkeeper status`, then retry)" in message
    assert caught.value.exit_code == 5


def test_a_shard_no_sentinel_monitors_is_an_error(topo: Topology) -> None:
    answers = [answer(s, shard1=(A1, 0)) for s in S]
    with pytest.raises(SentinelError, match=r"no master for shard shard2: .*not monitoring it: "):
        decide_masters(topo, answers)


def test_a_tie_at_the_top_epoch_is_an_error(topo: Topology) -> None:
    answers = [
        answer(S[0], shard1=(A1, 3), shard2=(A2, 0)),
        answer(S[1], shard1=(B1, 3), shard2=(A2, 0)),
        silent(S[2]),
    ]
    with pytest.raises(SentinelError, match="no master for shard shard1: epoch 3: sentinels"):
        decide_masters(topo, answers)


def test_current_masters_asks_every_sentinel(
    topo: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[Address, str | None, float]] = []

    def fake(address: Address, password: str | None = None, timeout: float = 0.5) -> SentinelAnswer:
        asked.append((address, password, timeout))
        if address == S[2]:
            return SentinelAnswer(address, None, "refused")
        return SentinelAnswer(
            address,
            {
                name: MasterReport(address, name, addr, 1, frozenset({"master"}), 2, 2, 1)
                for name, addr in (("shard1", A1), ("shard2", A2))
            },
        )

    monkeypatch.setattr(probe, "sentinel_answer", fake)
    masters = current_masters(topo, "pw", timeout=0.25)
    assert masters.addresses == {"shard1": A1, "shard2": A2}
    assert sorted(asked) == [(s, "pw", 0.25) for s in S]
