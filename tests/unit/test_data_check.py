"""Unit tests of the shard-scan classification (`Classifier`), given what each shard holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from redkeeper.data import Classifier, Manifest, ScanFindings
from redkeeper.data.check import Defects

NAMES = ["shard1", "shard2", "shard3"]


def home(key: bytes) -> int:
    """A fake ring: the last byte's value modulo the shard count."""
    return key[-1] % 3 if key else 0


def manifest(count: int, prefix: str = "key:") -> Manifest:
    return Manifest(
        prefix=prefix,
        count=count,
        value_size=8,
        hash="fnv1a_64",
        distribution="ketama",
        hash_tag=None,
        shards={"shard1": 1, "shard2": 1, "shard3": 1},
        written_at="2024-01-01T00:00:00+00:00",
    )


def classify(
    holdings: Mapping[int, Iterable[bytes]],
    found: Manifest | None = None,
    index_of: Callable[[bytes], int] = home,
    cap: int = 10_000,
    asked: list[tuple[int, list[bytes]]] | None = None,
) -> ScanFindings:
    """Feed every shard's keys (in two SCAN pages each), then finish with the fake holdings."""
    sets = {shard: set(keys) for shard, keys in holdings.items()}
    classifier = Classifier(index_of, NAMES, found, cap)
    for shard, keys in sorted(sets.items()):
        ordered = sorted(keys)
        half = len(ordered) // 2
        classifier.feed(shard, ordered[:half])
        classifier.feed(shard, ordered[half:])

    def exists_on(shard: int, keys: list[bytes]) -> set[bytes]:
        if asked is not None:
            asked.append((shard, sorted(keys)))
        return sets.get(shard, set()) & set(keys)

    return classifier.finish(exists_on)


def at_home(keys: Iterable[bytes]) -> dict[int, set[bytes]]:
    placed: dict[int, set[bytes]] = {0: set(), 1: set(), 2: set()}
    for key in keys:
        placed[home(key)].add(key)
    return placed


def manifest_keys(count: int, prefix: str = "key:") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


def counts(findings: ScanFindings) -> dict[str, int]:
    return {name: d.count for name, d in findings.categories().items()}


def test_clean_when_every_key_is_at_home() -> None:
    findings = classify(at_home([*manifest_keys(50), b"other", b"x"]), manifest(50))
    assert counts(findings) == {"wrong_shard": 0, "duplicated": 0, "missing": 0}
    assert findings.missing is not None and findings.missing.items == []


def test_a_stray_key_on_a_wrong_shard_is_wrong_shard_only() -> None:
    stray = b"stray-a"  # home: ord("a") % 3 == 1
    assert home(stray) == 1
    holdings = at_home(manifest_keys(20))
    holdings[2].add(stray)
    findings = classify(holdings, manifest(20))
    assert counts(findings) == {"wrong_shard": 1, "duplicated": 0, "missing": 0}
    assert findings.wrong_shard.items == [
        {"key": "stray-a", "found_on": ["shard3"], "expected": "shard2"}
    ]


def test_a_key_at_home_and_elsewhere_is_duplicated_and_wrong_shard() -> None:
    keys = manifest_keys(20)
    holdings = at_home(keys)
    twin = keys[7]
    other = (home(twin) + 1) % 3
    holdings[other].add(twin)
    findings = classify(holdings, manifest(20))
    assert counts(findings) == {"wrong_shard": 1, "duplicated": 1, "missing": 0}
    shards = sorted([NAMES[home(twin)], NAMES[other]], key=NAMES.index)
    assert findings.duplicated.items == [{"key": "key:7", "shards": shards}]


def test_a_key_on_two_wrong_shards_is_duplicated_without_asking_its_home() -> None:
    key = b"k0"  # home 0 (ord("0") == 48)
    asked: list[tuple[int, list[bytes]]] = []
    findings = classify({0: set(), 1: {key}, 2: {key}}, None, asked=asked)
    assert counts(findings) == {"wrong_shard": 1, "duplicated": 1}
    assert findings.wrong_shard.items == [
        {"key": "k0", "found_on": ["shard2", "shard3"], "expected": "shard1"}
    ]
    assert findings.duplicated.items == [{"key": "k0", "shards": ["shard2", "shard3"]}]
    assert asked == [(0, [key])]  # only wrong-shard keys, grouped by their home


def test_missing_manifest_keys_and_a_moved_one_is_not_missing() -> None:
    keys = manifest_keys(30)
    holdings = at_home(keys)
    for gone in (b"key:3", b"key:29"):
        holdings[home(gone)].discard(gone)
    moved = b"key:11"
    holdings[home(moved)].discard(moved)
    holdings[(home(moved) + 1) % 3].add(moved)
    findings = classify(holdings, manifest(30))
    assert counts(findings) == {"wrong_shard": 1, "duplicated": 0, "missing": 2}
    assert findings.missing is not None and findings.missing.items == ["key:3", "key:29"]


def test_a_key_scanned_twice_counts_once() -> None:
    classifier = Classifier(home, NAMES, manifest(3))
    stray = b"stray-a"
    for _ in range(2):  # SCAN may return a key more than once
        classifier.feed(0, [b"key:0", stray])
    classifier.feed(1, [b"key:1"])
    classifier.feed(2, [b"key:2"])
    findings = classifier.finish(lambda shard, keys: set())
    assert counts(findings) == {"wrong_shard": 1, "duplicated": 0, "missing": 0}
    assert classifier.scanned == [4, 1, 1]


def test_only_canonical_manifest_names_count_as_present() -> None:
    lookalikes = [b"key:01", b"key:1x", b"key:", b"key:-1", b"key:5", b"KEY:1", b"key:\xd9\xa1"]
    findings = classify(at_home(lookalikes), manifest(5))
    assert findings.missing is not None
    assert findings.missing.count == 5
    assert findings.missing.items == ["key:0", "key:1", "key:2", "key:3", "key:4"]


def test_counts_are_exact_and_lists_capped() -> None:
    strays = [b"s%d" % i for i in range(100)]
    holdings: dict[int, set[bytes]] = {0: set(), 1: set(), 2: set()}
    for key in strays:
        holdings[(home(key) + 1) % 3].add(key)
    findings = classify(holdings, manifest(40), cap=7)
    assert findings.wrong_shard.count == 100
    assert len(findings.wrong_shard.items) == 7
    assert findings.missing is not None
    assert (findings.missing.count, len(findings.missing.items)) == (40, 7)


def test_without_a_manifest_nothing_is_missing() -> None:
    findings = classify(at_home([b"a", b"b"]))
    assert findings.missing is None
    assert counts(findings) == {"wrong_shard": 0, "duplicated": 0}


def test_binary_keys_are_shown_escaped() -> None:
    key = b"\xff\x00\x01"  # home 1
    findings = classify({0: {key}, 1: set(), 2: set()})
    assert findings.wrong_shard.items[0]["key"] == "\\xff\\x00\\x01"


def test_defects_cap() -> None:
    defects = Defects(cap=2)
    for i in range(5):
        defects.add(i)
    assert defects.to_json() == {"count": 5, "keys": [0, 1]}
