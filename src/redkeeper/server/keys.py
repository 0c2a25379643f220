"""Where a request's keys are: `keys_of` reads them from the arguments of a request of any keyed
class of the command table (`redkeeper.server.commands`), with Redis's own parsing of numkeys,
SORT/GEORADIUS STORE options and XREAD[GROUP] STREAMS, and its error texts. Pure: no I/O.
"""

from __future__ import annotations

from redkeeper.server.commands import (
    EVAL,
    MGET,
    MSET,
    NUMKEYS,
    SAME,
    SINGLE,
    STORE,
    STREAMS,
    SUM,
    CommandError,
    CommandSpec,
)


def _numkeys(args: list[bytes], at: int, name: str) -> int:
    try:
        count = int(args[at])
    except (ValueError, IndexError):
        raise CommandError("ERR value is not an integer or out of range") from None
    if count < 0:
        raise CommandError(f"ERR Number of keys can't be negative ({name})")
    if count > len(args) - at - 1:
        raise CommandError(f"ERR Number of keys can't be greater than number of args ({name})")
    return count


_SORT_SKIP = {b"LIMIT": 2, b"GET": 1, b"BY": 1}  # SORT options and their argument counts
_XREAD_OPTIONS = {b"COUNT": 2, b"GROUP": 3, b"NOACK": 1}  # XREAD[GROUP] options, their widths


def keys_of(spec: CommandSpec, args: list[bytes]) -> list[bytes]:
    """The keys of a request of any keyed class (its arity already checked).

    Raises CommandError for a malformed numkeys, an EVAL without keys, or XREAD ... BLOCK.
    """
    kind = spec.kind
    if kind in (SINGLE,):
        return [args[spec.first]]
    if kind in (SUM, MGET, MSET, SAME):
        last = spec.last if spec.last >= 0 else len(args) + spec.last
        return args[spec.first : last + 1 : spec.step]
    if kind == EVAL:
        count = _numkeys(args, 2, spec.name)
        if count == 0:
            raise CommandError(
                f"ERR redkeeper: {spec.name} with 0 keys cannot be routed to a shard; "
                "pass the keys the script touches (all on one shard)"
            )
        return args[3 : 3 + count]
    if kind == NUMKEYS:
        at = spec.first
        count = _numkeys(args, at, spec.name)
        if count == 0:
            raise CommandError("ERR numkeys should be greater than 0")
        return args[1:at] + args[at + 1 : at + 1 + count]
    if kind == STORE:
        # Options start where Redis's getkeys looks for them (georadiusGetKeys: argument 5;
        # sortGetKeys: 2, skipping the arguments of LIMIT, GET and BY), so a member or a
        # pattern spelled "store" is not taken for the option.
        keys = [args[1]]
        skip = _SORT_SKIP if spec.name == "SORT" else {}
        i = 2 if spec.name == "SORT" else 5
        while i < len(args) - 1:
            option = args[i].upper()
            if option in (b"STORE", b"STOREDIST"):
                keys.append(args[i + 1])
                i += 2
            else:
                i += 1 + skip.get(option, 0)
        return keys
    if kind == STREAMS:
        # Options read in order, as xreadCommand does, so that a group, consumer or stream
        # named "block" or "streams" is not taken for an option.
        group = spec.name == "XREADGROUP"
        i = 1
        while i < len(args) and args[i].upper() != b"STREAMS":
            option = args[i].upper()
            if option == b"BLOCK":
                raise CommandError(
                    f"ERR redkeeper: {spec.name} BLOCK is not supported through the proxy: "
                    "blocking commands would stall a shared backend connection; poll without "
                    "BLOCK"
                )
            step = _XREAD_OPTIONS.get(option)
            if step is None or (option != b"COUNT" and not group):
                raise CommandError("ERR syntax error")
            i += step
        if i >= len(args):
            raise CommandError("ERR syntax error")
        rest = args[i + 1 :]
        if not rest or len(rest) % 2:
            raise CommandError(  # Redis 7.0's text, for XREADGROUP too
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
                "specified."
            )
        return rest[: len(rest) // 2]
    return []
