"""Unit tests of THE rule (`core.masters`) and of Sentinel reply parsing (fakes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from redkeeper.core import MasterReport, MasterVerdict, SentinelAnswer, Status, majority
from redkeeper.core.masters import decide_masters
from redkeeper.model import Address
from redkeeper.sentinel import (
    parse_master_addr,
    parse_master_entry,
    parse_masters_reply,
)

S1, S2, S3, S4, S5 = SENTINELS = tuple(Address("127.0.0.1", 26379 + i) for i in range(5))
M1 = Address("10.0.0.1", 6379)
M2 = Address("10.0.0.2", 6379)
M3 = Address("10.0.0.3", 6379)


def report(sentinel: Address, address: Address, epoch: int, name: str = "shard1") -> MasterReport:
    return MasterReport(
        sentinel=sentinel,
        name=name,
        address=address,
        config_epoch=epoch,
        flags=frozenset({"master"}),
        num_other_sentinels=2,
        quorum=2,
    )


def answer(sentinel: Address, *reports: tuple[Address, int] | MasterReport) -> SentinelAnswer:
    parsed: dict[str, MasterReport] = {}
    for item in reports:
        r = item if isinstance(item, MasterReport) else report(sentinel, item[0], item[1])
        parsed[r.name] = r
    return SentinelAnswer(sentinel, parsed, None)


def decide(
    answers: list[SentinelAnswer], configured: int, names: Iterable[str] | None = None
) -> dict[str, MasterVerdict]:
    """The verdicts with the first `configured` of S1..S5 as the configured Sentinels."""
    return decide_masters(answers, SENTINELS[:configured], names).verdicts


def down(sentinel: Address) -> SentinelAnswer:
    return SentinelAnswer(sentinel, None, "ConnectionError: refused")


@pytest.mark.parametrize(("configured", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_majority(configured: int, needed: int) -> None:
    assert majority(configured) == needed


def test_all_agree() -> None:
    answers = [answer(s, (M1, 3)) for s in (S1, S2, S3)]
    v = decide(answers, 3)["shard1"]
    assert v.status is Status.OK and v.ok
    assert (v.address, v.config_epoch) == (M1, 3)
    assert (v.answered, v.needed, v.configured, v.agreeing) == (3, 2, 3, 3)
    assert v.detail == "epoch 3 from 3/3 sentinels"


def test_three_configured_one_answering_is_no_majority() -> None:
    answers = [answer(S1, (M1, 3)), down(S2), down(S3)]
    v = decide(answers, 3)["shard1"]
    assert v.status is Status.NO_MAJORITY
    assert v.address is None and v.config_epoch is None
    assert (v.answered, v.needed, v.agreeing) == (1, 2, 0)
    assert "1/3" in v.detail


def test_no_majority_counts_configured_not_asked() -> None:
    # Only two Sentinels were asked, both answered, but five are configured.
    answers = [answer(S1, (M1, 3)), answer(S2, (M1, 3))]
    assert decide(answers, 5)["shard1"].status is Status.NO_MAJORITY
    assert decide(answers, 3)["shard1"].status is Status.OK


def test_no_majority_for_named_masters_even_without_reports() -> None:
    verdicts = decide([down(S1), down(S2), down(S3)], 3, names=["shard1", "shard2"])
    assert set(verdicts) == {"shard1", "shard2"}
    assert all(v.status is Status.NO_MAJORITY and v.answered == 0 for v in verdicts.values())


def test_highest_epoch_wins_even_if_reported_by_fewer() -> None:
    answers = [answer(S1, (M2, 4)), answer(S2, (M1, 3)), answer(S3, (M1, 3))]
    v = decide(answers, 3)["shard1"]
    assert (v.status, v.address, v.config_epoch, v.agreeing) == (Status.OK, M2, 4, 1)
    assert "epoch 4 from 1/3" in v.detail
    assert str(M1) in v.detail


def test_two_answering_with_different_epochs() -> None:
    answers = [answer(S1, (M1, 1)), answer(S2, (M2, 2)), down(S3)]
    v = decide(answers, 3)["shard1"]
    assert (v.status, v.address, v.config_epoch, v.answered, v.agreeing) == (
        Status.OK,
        M2,
        2,
        2,
        1,
    )


def test_agreeing_counts_the_address_across_epochs() -> None:
    answers = [answer(S1, (M1, 5)), answer(S2, (M1, 2)), answer(S3, (M2, 4))]
    v = decide(answers, 3)["shard1"]
    assert (v.address, v.config_epoch, v.agreeing) == (M1, 5, 2)


def test_sentinel_that_does_not_know_the_master() -> None:
    answers = [answer(S1, (M1, 2)), answer(S2), answer(S3, (M1, 2))]
    v = decide(answers, 3)["shard1"]
    assert (v.status, v.address, v.answered, v.agreeing) == (Status.OK, M1, 3, 2)
    assert v.detail.startswith("epoch 2 from 2/3")


def test_majority_answered_but_nobody_knows_the_name() -> None:
    answers = [answer(S1, (M1, 2)), answer(S2), down(S3)]
    verdicts = decide(answers, 3, names=["shard1", "shard9"])
    assert verdicts["shard1"].status is Status.OK
    v = verdicts["shard9"]
    assert (v.status, v.address, v.config_epoch, v.answered) == (Status.UNKNOWN, None, None, 2)
    assert "shard9" in v.detail


def test_conflicting_addresses_at_the_same_epoch() -> None:
    answers = [answer(S1, (M1, 3)), answer(S2, (M2, 3)), down(S3)]
    v = decide(answers, 3)["shard1"]
    assert v.status is Status.CONFLICT and not v.ok
    assert v.address is None
    assert (v.config_epoch, v.agreeing) == (3, 1)
    assert str(M1) in v.detail and str(M2) in v.detail


def test_same_epoch_tie_broken_by_count() -> None:
    answers = [answer(S1, (M1, 3)), answer(S2, (M2, 3)), answer(S3, (M2, 3))]
    v = decide(answers, 3)["shard1"]
    assert (v.status, v.address, v.agreeing) == (Status.OK, M2, 2)
    assert "outvoted" in v.detail and str(M1) in v.detail


def test_lower_epoch_reports_do_not_break_a_top_epoch_tie() -> None:
    answers = [
        answer(S1, (M1, 3)),
        answer(S2, (M2, 3)),
        answer(S3, (M1, 2)),
        answer(S4, (M1, 2)),
        down(S5),
    ]
    assert decide(answers, 5)["shard1"].status is Status.CONFLICT


def test_several_masters_and_names_default_to_union() -> None:
    answers = [
        answer(S1, report(S1, M1, 1, "shard1"), report(S1, M3, 7, "shard2")),
        answer(S2, report(S2, M1, 1, "shard1")),
        answer(S3, report(S3, M3, 7, "shard2")),
    ]
    verdicts = decide(answers, 3)
    assert list(verdicts) == ["shard1", "shard2"]
    assert verdicts["shard1"].address == M1 and verdicts["shard1"].agreeing == 2
    assert verdicts["shard2"].address == M3 and verdicts["shard2"].config_epoch == 7


def test_names_restrict_and_keep_order() -> None:
    answers = [answer(s, report(s, M1, 1, "a"), report(s, M2, 1, "b")) for s in (S1, S2)]
    assert list(decide(answers, 3, names=["b"])) == ["b"]
    assert list(decide(answers, 3, names=["b", "a", "b"])) == ["b", "a"]


def test_duplicate_answers_from_one_sentinel_count_once() -> None:
    answers = [answer(S1, (M1, 3)), answer(S1, (M1, 3)), down(S2), down(S3)]
    assert decide(answers, 3)["shard1"].status is Status.NO_MAJORITY


def test_configured_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        decide([], 0)


def test_duplicate_configured_addresses_count_once() -> None:
    # S1 configured three times is one Sentinel: 1 of 1 answering is a majority of 1 ...
    view = decide_masters([answer(S1, (M1, 3))], [S1, S1, S1])
    assert (view.configured, view.needed, view.answered) == (1, 1, 1)
    # ... and with S2 and S3 configured too, S1 alone is 1 of 3.
    view = decide_masters([answer(S1, (M1, 3))], [S1, S1, S2, S3])
    assert view.verdicts["shard1"].status is Status.NO_MAJORITY
    assert view.silent == (S2, S3)


def test_answers_from_unconfigured_sentinels_do_not_count() -> None:
    rogue = Address("10.9.9.9", 26379)
    answers = [answer(S1, (M1, 3)), answer(rogue, (M2, 9)), down(S2), down(S3)]
    view = decide_masters(answers, [S1, S2, S3])
    assert not view.has_majority and view.answered == 1
    answers = [answer(S1, (M1, 3)), answer(S2, (M1, 3)), answer(rogue, (M2, 9))]
    assert decide_masters(answers, [S1, S2, S3]).verdicts["shard1"].address == M1


def test_leader_quirk_takes_the_current_address_while_failing_over() -> None:
    # Between +promoted-slave and +failover-end the leader shows the OLD address with the
    # NEW epoch; GET-MASTER-ADDR-BY-NAME (current_address) already says the promoted one.
    leader = replace(
        report(S1, M1, 4),
        flags=frozenset({"master", "failover_in_progress"}),
        current_address=M2,
    )
    answers = [answer(S1, leader), answer(S2, (M1, 3)), answer(S3, (M1, 3))]
    v = decide(answers, 3)["shard1"]
    assert (v.status, v.address, v.config_epoch) == (Status.OK, M2, 4)
    # Without the flag the current address is not used (it is only asked during failover).
    stale = replace(leader, flags=frozenset({"master"}))
    assert decide([answer(S1, stale), down(S2), answer(S3, (M1, 3))], 3)["shard1"].address == M1


def test_flags_and_in_failover_are_unions_over_answers() -> None:
    odown = replace(report(S2, M1, 3), flags=frozenset({"master", "o_down"}))
    view = decide_masters([answer(S1, (M1, 3)), answer(S2, odown), down(S3)], SENTINELS[:3])
    assert view.flags["shard1"] == {"master", "o_down"}
    assert view.in_failover() == {"shard1"}
    assert view.addresses() == {"shard1": M1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["127.0.0.1", "6667"], Address("127.0.0.1", 6667)),
        ([b"10.0.0.2", b"6379"], Address("10.0.0.2", 6379)),
        (None, None),
        (["127.0.0.1"], None),
        (["127.0.0.1", "0"], None),
        (["", "6379"], None),
    ],
)
def test_parse_master_addr(raw: object, expected: Address | None) -> None:
    assert parse_master_addr(raw) == expected


# --- SENTINEL MASTERS parsing ------------------------------------------------------------

ENTRY = [
    "name", "mymaster", "ip", "127.0.0.1", "port", "17001",
    "runid", "001b1c5d327b8e1f8455aad66a129fead6e09674", "flags", "s_down,master,disconnected",
    "link-pending-commands", "0", "config-epoch", "4", "num-slaves", "1",
    "num-other-sentinels", "2", "quorum", "2", "failover-timeout", "5000",
]  # fmt: skip


def test_parse_masters_reply() -> None:
    reports = parse_masters_reply(S1, [ENTRY])
    assert reports == {
        "mymaster": MasterReport(
            sentinel=S1,
            name="mymaster",
            address=Address("127.0.0.1", 17001),
            config_epoch=4,
            flags=frozenset({"s_down", "master", "disconnected"}),
            num_other_sentinels=2,
            quorum=2,
            num_replicas=1,
        )
    }


def test_parse_bytes_and_resp3_maps() -> None:
    as_bytes = [[item.encode() for item in ENTRY]]
    as_map = [dict(zip(ENTRY[::2], ENTRY[1::2], strict=True))]
    assert parse_masters_reply(S1, as_bytes) == parse_masters_reply(S1, as_map)
    assert parse_masters_reply(S1, []) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("OK", "not a list"),
        ([["name"]], "pairs"),
        ([[k if k != "config-epoch" else "x" for k in ENTRY]], "config-epoch"),
        ([[v if v != "17001" else "port?" for v in ENTRY]], "port"),
        ([[v if v != "17001" else "0" for v in ENTRY]], "outside"),
        ([ENTRY[2:]], "name"),
        ([[1, 2]], "string"),
    ],
)
def test_parse_malformed_reply_raises_value_error(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_masters_reply(S1, raw)


def test_parse_master_entry_empty_flags() -> None:
    entry = [v if v != "s_down,master,disconnected" else "" for v in ENTRY]
    assert parse_master_entry(S1, entry).flags == frozenset()
