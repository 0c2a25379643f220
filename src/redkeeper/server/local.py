"""Commands the proxy answers itself, the way Redis 7 answers them.

Owns the connection-level commands today's clients send on connect and the proxy's own
answers: HELLO (RESP2/RESP3 switch, AUTH and SETNAME inside it), AUTH (with Redis's
WRONGPASS/NOAUTH texts), CLIENT (SETINFO, SETNAME, GETNAME, ID, INFO, LIST, NO-EVICT,
NO-TOUCH, HELP; other subcommands get Redis's "unknown subcommand" error), SELECT 0, PING,
ECHO, QUIT, RESET, TIME, READONLY/READWRITE, COMMAND (COUNT, INFO, DOCS, LIST, GETKEYS) and
INFO (the proxy's own sections; `loading:0` for ioredis's ready check).

`Session` is one client's connection state; `LocalCommands.run` takes it and the request and
returns the reply and whether to close after it. Pure apart from the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redkeeper.server import commands, resp
from redkeeper.server.keys import keys_of

REDIS_VERSION = "7.0.0"  # the Redis whose protocol and replies the proxy speaks
NOAUTH = resp.error("NOAUTH Authentication required.")
WRONGPASS = resp.error("WRONGPASS invalid username-password pair or user is disabled.")
_NO_PASSWORD = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
_HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
    "RESP protocol version at the same time"
)
_NOT_INT = "ERR value is not an integer or out of range"
#: commands a client may send before AUTH when a password is configured.
PRE_AUTH = frozenset({"AUTH", "HELLO", "QUIT", "RESET"})


@dataclass
class Session:
    """One client connection's state."""

    id: int
    addr: str = ""
    laddr: str = ""
    proto: int = 2
    authed: bool = True
    name: bytes = b""
    lib_name: bytes = b""
    lib_ver: bytes = b""
    created: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    last_command: str = "NULL"

    def line(self, now: float) -> str:
        """This client as a line of CLIENT LIST / CLIENT INFO."""
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 "
            f"name={self.name.decode(errors='replace')} age={int(now - self.created)} "
            f"idle={int(now - self.last_active)} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "
            f"cmd={self.last_command.lower()} user=default redir=-1 resp={self.proto} "
            f"lib-name={self.lib_name.decode(errors='replace')} "
            f"lib-ver={self.lib_ver.decode(errors='replace')}"
        )


Sections = Callable[[], list[tuple[str, list[tuple[str, object]]]]]


class LocalCommands:
    """Answers the LOCAL commands of the command table."""

    def __init__(
        self,
        password: str | None,
        sections: Sections,
        client_lines: Callable[[float], list[str]],
    ) -> None:
        self.password = password
        self.sections = sections
        self.client_lines = client_lines
        self._handlers: dict[str, Callable[[Session, list[bytes]], tuple[bytes, bool]]] = {
            "PING": self._ping,
            "ECHO": lambda s, a: (resp.bulk(a[1]), False),
            "QUIT": lambda s, a: (resp.OK, True),
            "RESET": self._reset,
            "AUTH": self._auth,
            "HELLO": self._hello,
            "CLIENT": self._client,
            "SELECT": self._select,
            "COMMAND": self._command,
            "READONLY": lambda s, a: (resp.OK, False),
            "READWRITE": lambda s, a: (resp.OK, False),
            "INFO": self._info,
            "TIME": self._time,
        }

    def run(self, session: Session, name: str, args: list[bytes]) -> tuple[bytes, bool]:
        """The reply to a LOCAL command (arity checked) and whether to close after it."""
        return self._handlers[name](session, args)

    # -- connection -------------------------------------------------------------------------
    def _ping(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        if len(args) > 2:
            return resp.error(commands.arity_error(args[0])), False
        return (resp.bulk(args[1]) if len(args) == 2 else b"+PONG\r\n"), False

    def _reset(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        session.proto = 2
        session.name = b""
        session.authed = self.password is None
        return b"+RESET\r\n", False

    def _check(self, user: bytes, password: bytes) -> bool:
        if user != b"default":
            return False
        return self.password is None or password == self.password.encode()

    def _auth(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        if len(args) > 3:
            return resp.error("ERR syntax error"), False
        if len(args) == 2:
            if self.password is None:
                return resp.error(_NO_PASSWORD), False
            user, password = b"default", args[1]
        else:
            user, password = args[1], args[2]
        if not self._check(user, password):
            return WRONGPASS, False
        session.authed = True
        return resp.OK, False

    def _hello(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        proto = session.proto
        if len(args) >= 2:
            try:
                proto = int(args[1])
            except ValueError:
                return resp.error("ERR Protocol version is not an integer or out of range"), False
            if proto not in (2, 3):
                return resp.error("NOPROTO sorry, this protocol version is not supported"), False
        auth: tuple[bytes, bytes] | None = None
        name: bytes | None = None
        i = 2
        while i < len(args):
            option = args[i].upper()
            more = len(args) - i - 1
            if option == b"AUTH" and more >= 2:
                auth = (args[i + 1], args[i + 2])
                i += 3
            elif option == b"SETNAME" and more >= 1:
                name = args[i + 1]
                i += 2
            else:
                shown = args[i].decode(errors="replace")
                return resp.error(f"ERR Syntax error in HELLO option '{shown}'"), False
        if auth is not None:
            if not self._check(*auth):
                return WRONGPASS, False
            session.authed = True
        if not session.authed:
            return resp.error(_HELLO_NOAUTH), False
        if name is not None:
            if not _valid_name(name):
                return resp.error(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                ), False
            session.name = name
        session.proto = proto
        fields = [
            (resp.bulk("server"), resp.bulk("redis")),
            (resp.bulk("version"), resp.bulk(REDIS_VERSION)),
            (resp.bulk("proto"), resp.integer(proto)),
            (resp.bulk("id"), resp.integer(session.id)),
            (resp.bulk("mode"), resp.bulk("standalone")),
            (resp.bulk("role"), resp.bulk("master")),
            (resp.bulk("modules"), resp.array([])),
        ]
        return resp.mapping(fields, proto), False

    def _select(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        try:
            db = int(args[1])
        except ValueError:
            return resp.error(_NOT_INT), False
        if db == 0:
            return resp.OK, False
        return resp.error(
            f"ERR redkeeper: SELECT {db} is not supported: the proxy serves database 0 only "
            "(its backend connections are shared)"
        ), False

    def _time(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        return resp.array([resp.bulk(str(seconds)), resp.bulk(str(micros))]), False

    # -- CLIENT -----------------------------------------------------------------------------
    def _client(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        sub = args[1].upper()
        argc = len(args)
        if sub == b"SETINFO" and argc == 4:
            attr = args[2].upper()
            if not _valid_name(args[3]):
                what = attr.decode(errors="replace").lower()
                return resp.error(
                    f"ERR {what} cannot contain spaces, newlines or special characters."
                ), False
            if attr == b"LIB-NAME":
                session.lib_name = args[3]
            elif attr == b"LIB-VER":
                session.lib_ver = args[3]
            else:
                shown = args[2].decode(errors="replace")
                return resp.error(f"ERR Unrecognized option '{shown}'"), False
            return resp.OK, False
        if sub == b"SETNAME" and argc == 3:
            if not _valid_name(args[2]):
                return resp.error(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                ), False
            session.name = args[2]
            return resp.OK, False
        if sub == b"GETNAME" and argc == 2:
            return resp.bulk(session.name or None, session.proto), False
        if sub == b"ID" and argc == 2:
            return resp.integer(session.id), False
        if sub == b"INFO" and argc == 2:
            return _verbatim(session.line(time.monotonic()) + "\n", session.proto), False
        if sub == b"LIST":
            lines = self.client_lines(time.monotonic())
            return _verbatim("".join(line + "\n" for line in lines), session.proto), False
        if sub in (b"NO-EVICT", b"NO-TOUCH") and argc == 3:
            if args[2].upper() not in (b"ON", b"OFF"):
                return resp.error("ERR syntax error"), False
            return resp.OK, False
        if sub == b"REPLY" and argc == 3 and args[2].upper() == b"ON":
            return resp.OK, False
        if sub == b"HELP":
            lines = [
                "CLIENT <subcommand> [<arg> ...]. Subcommands (answered by the redkeeper proxy):",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "SETNAME <name>",
                "GETNAME",
                "ID",
                "INFO",
                "LIST",
                "NO-EVICT <ON|OFF>",
                "NO-TOUCH <ON|OFF>",
            ]
            return resp.array([resp.simple(line) for line in lines]), False
        shown = args[1].decode(errors="replace")
        return resp.error(f"ERR unknown subcommand '{shown}'. Try CLIENT HELP."), False

    # -- COMMAND ----------------------------------------------------------------------------
    def _command(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        table = commands.COMMANDS
        known = [spec for spec in table.values() if spec.kind != commands.REFUSED]
        if len(args) == 1:
            return resp.array([_command_info(spec) for spec in known]), False
        sub = args[1].upper()
        if sub == b"COUNT":
            return resp.integer(len(known)), False
        if sub == b"LIST":
            return resp.array([resp.bulk(spec.name.lower()) for spec in known]), False
        if sub == b"DOCS":
            return resp.mapping([], session.proto), False
        if sub == b"INFO":
            infos = []
            for name in args[2:]:
                spec = commands.lookup(name)
                ok = spec is not None and spec.kind != commands.REFUSED
                infos.append(_command_info(spec) if spec is not None and ok else resp.null(2))
            return resp.array(infos), False
        if sub == b"GETKEYS" and len(args) >= 3:
            spec = commands.lookup(args[2])
            if spec is None or spec.kind in (commands.LOCAL, commands.REFUSED):
                return resp.error("ERR Invalid command specified"), False
            if not spec.arity_ok(len(args) - 2):
                return resp.error("ERR Invalid number of arguments specified for command"), False
            try:
                keys = keys_of(spec, args[2:])
            except commands.CommandError as exc:
                return resp.error(str(exc)), False
            return resp.array([resp.bulk(k) for k in keys]), False
        shown = args[1].decode(errors="replace")
        return resp.error(f"ERR unknown subcommand '{shown}'. Try COMMAND HELP."), False

    # -- INFO -------------------------------------------------------------------------------
    def _info(self, session: Session, args: list[bytes]) -> tuple[bytes, bool]:
        wanted = {a.decode(errors="replace").lower() for a in args[1:]}
        every = not wanted or wanted & {"all", "default", "everything"}
        parts = []
        for title, fields in self.sections():
            if every or title.lower() in wanted:
                body = "".join(f"{key}:{value}\r\n" for key, value in fields)
                parts.append(f"# {title}\r\n{body}")
        return _verbatim("\r\n".join(parts), session.proto), False


def _valid_name(value: bytes) -> bool:
    return all(33 <= b <= 126 for b in value)


def _verbatim(text: str, proto: int) -> bytes:
    """A bulk string in RESP2, a verbatim `txt` string in RESP3 (as Redis sends INFO)."""
    if proto == 3:
        data = b"txt:" + text.encode()
        return b"=%d\r\n%s\r\n" % (len(data), data)
    return resp.bulk(text)


def _command_info(spec: commands.CommandSpec) -> bytes:
    flags: Sequence[str] = ("readonly",) if spec.readonly else ("write",)
    if spec.kind == commands.LOCAL:
        flags = ("fast", "no_auth") if spec.name in PRE_AUTH else ("fast",)
    first = spec.first if spec.kind in (commands.SINGLE, commands.SAME, commands.SUM) else 0
    last = spec.last if first else 0
    step = spec.step if first else 0
    if spec.kind in (commands.MGET, commands.MSET):
        first, last, step = spec.first, spec.last, spec.step
    return resp.array(
        [
            resp.bulk(spec.name.lower()),
            resp.integer(spec.arity),
            resp.array([resp.simple(f) for f in flags]),
            resp.integer(first),
            resp.integer(last),
            resp.integer(step),
            resp.array([]),
            resp.array([]),
            resp.array([]),
            resp.array([]),
        ]
    )
