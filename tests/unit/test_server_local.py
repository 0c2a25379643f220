"""Unit: the commands the proxy answers itself, with Redis 7's reply texts."""

from __future__ import annotations

from redkeeper.server.local import LocalCommands, Session


def _sections() -> list[tuple[str, list[tuple[str, object]]]]:
    return [("Server", [("redis_version", "7.0.0")]), ("Persistence", [("loading", 0)])]


def _local(password: str | None = None) -> LocalCommands:
    return LocalCommands(password, _sections, lambda now: ["id=1", "id=2"])


def run(local: LocalCommands, session: Session, *args: bytes) -> bytes:
    reply, close = local.run(session, args[0].decode().upper(), list(args))
    assert not close or args[0].upper() == b"QUIT"
    return reply


def test_hello_3_and_2() -> None:
    local, session = _local(), Session(7)
    reply = run(local, session, b"HELLO", b"3")
    head = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
    assert reply.startswith(head)
    assert b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n" in reply
    assert reply.endswith(b"$7\r\nmodules\r\n*0\r\n")
    assert session.proto == 3
    reply = run(local, session, b"HELLO", b"2", b"SETNAME", b"app")
    assert reply.startswith(b"*14\r\n") and session.proto == 2 and session.name == b"app"
    assert run(local, session, b"HELLO", b"4") == (
        b"-NOPROTO sorry, this protocol version is not supported\r\n"
    )
    assert run(local, session, b"HELLO", b"x").startswith(b"-ERR Protocol version is not an")
    assert run(local, session, b"HELLO", b"3", b"BOGUS") == (
        b"-ERR Syntax error in HELLO option 'BOGUS'\r\n"
    )


def test_auth_without_password() -> None:
    local, session = _local(), Session(1)
    assert run(local, session, b"AUTH", b"x").startswith(
        b"-ERR AUTH <password> called without any password configured for the default user."
    )
    assert run(local, session, b"AUTH", b"default", b"anything") == b"+OK\r\n"
    assert run(local, session, b"AUTH", b"bob", b"x").startswith(b"-WRONGPASS")


def test_auth_with_password() -> None:
    local, session = _local("pw"), Session(1, authed=False)
    assert run(local, session, b"HELLO", b"3").startswith(b"-NOAUTH HELLO must be called")
    assert run(local, session, b"AUTH", b"bad") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )
    assert not session.authed
    assert run(local, session, b"HELLO", b"3", b"AUTH", b"default", b"pw").startswith(b"%7")
    assert session.authed and session.proto == 3
    assert run(local, session, b"RESET") == b"+RESET\r\n"
    assert not session.authed and session.proto == 2
    assert run(local, session, b"AUTH", b"pw") == b"+OK\r\n"


def test_client_subcommands() -> None:
    local, session = _local(), Session(5)
    assert run(local, session, b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py") == b"+OK\r\n"
    assert run(local, session, b"CLIENT", b"setinfo", b"lib-ver", b"8.2.0") == b"+OK\r\n"
    assert run(local, session, b"CLIENT", b"SETINFO", b"OTHER", b"x") == (
        b"-ERR Unrecognized option 'OTHER'\r\n"
    )
    assert run(local, session, b"CLIENT", b"GETNAME") == b"$-1\r\n"
    assert run(local, session, b"CLIENT", b"SETNAME", b"n1") == b"+OK\r\n"
    assert run(local, session, b"CLIENT", b"GETNAME") == b"$2\r\nn1\r\n"
    assert run(local, session, b"CLIENT", b"SETNAME", b"a b").startswith(b"-ERR Client names")
    assert run(local, session, b"CLIENT", b"ID") == b":5\r\n"
    assert b"lib-name=redis-py lib-ver=8.2.0" in run(local, session, b"CLIENT", b"INFO")
    assert run(local, session, b"CLIENT", b"LIST") == b"$10\r\nid=1\nid=2\n\r\n"
    assert run(local, session, b"CLIENT", b"NO-EVICT", b"on") == b"+OK\r\n"
    assert run(local, session, b"CLIENT", b"MAINT_NOTIFICATIONS", b"ON") == (
        b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n"
    )


def test_simple_commands() -> None:
    local, session = _local(), Session(1)
    assert run(local, session, b"PING") == b"+PONG\r\n"
    assert run(local, session, b"PING", b"hi") == b"$2\r\nhi\r\n"
    assert run(local, session, b"ECHO", b"x") == b"$1\r\nx\r\n"
    assert run(local, session, b"SELECT", b"0") == b"+OK\r\n"
    assert run(local, session, b"SELECT", b"2").startswith(b"-ERR redkeeper: SELECT 2 is not")
    assert run(local, session, b"SELECT", b"x") == (
        b"-ERR value is not an integer or out of range\r\n"
    )
    assert local.run(session, "QUIT", [b"QUIT"]) == (b"+OK\r\n", True)
    assert run(local, session, b"READONLY") == b"+OK\r\n"


def test_info_and_command() -> None:
    local, session = _local(), Session(1)
    info = run(local, session, b"INFO")
    assert b"# Server\r\nredis_version:7.0.0\r\n" in info and b"loading:0\r\n" in info
    assert b"loading" not in run(local, session, b"INFO", b"server")
    session.proto = 3
    assert run(local, session, b"INFO", b"persistence").startswith(b"=")  # verbatim in RESP3
    assert run(local, session, b"COMMAND", b"DOCS") == b"%0\r\n"
    count = run(local, session, b"COMMAND", b"COUNT")
    assert count.startswith(b":") and int(count[1:-2]) > 150
    assert run(local, session, b"COMMAND", b"INFO", b"get", b"nope").startswith(
        b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"
    )
    assert run(local, session, b"COMMAND", b"GETKEYS", b"MSET", b"a", b"1", b"b", b"2") == (
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    )
