"""Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET and
CLIENT with its subcommands (CLIENT TRACKING and its kin: client-side
caching, kvserver/tracking.py).

They act on the caller's ``Session`` (its protocol version, name, database)
and, for CLIENT LIST / KILL, on the other clients through the server state.
There is one user, ``default``, with no password (Redis's out-of-the-box
setup): AUTH and HELLO AUTH answer exactly as Redis does then.
"""

from __future__ import annotations

import hmac
import logging
import time

from kvserver import errors
from kvserver.authguard import host_of
from kvserver.commands.containers import container
from kvserver.commands.parsing import parse_int, parse_int32
from kvserver.commands.registry import command
from kvserver.commands.transactions import end_session
from kvserver.errors import CommandError
from kvserver.protocol import OK, PONG, SetReply, Status, Verbatim
from kvserver.session import MONITOR, NORMAL, SUBSCRIBED, Session
from kvserver.state import REDIS_VERSION
from kvserver.tracking import Tracking

log = logging.getLogger(__name__)

DEFAULT_USER = b"default"  # the only user; it has no password (nopass)
RESET = Status("RESET")
# Redis's client types; a kvserver client is a normal one or a subscriber.
CLIENT_TYPES = (b"normal", b"slave", b"replica", b"pubsub", b"master")


def _client_type(s: Session) -> bytes:
    # Redis's getClientType: subscribed (any subscription) or normal.
    return b"pubsub" if s.conn.mode is SUBSCRIBED else b"normal"


@command("ping", -1, flags=("fast",), subscribed=True)
def ping(session: Session, args: list[bytes]) -> object:
    """PING [message]

    PONG, or ``message`` back.
    """
    if len(args) > 1:
        raise errors.wrong_arity("ping")
    if session.conn.mode is SUBSCRIBED and session.resp == 2:
        return [b"pong", args[0] if args else b""]  # Redis's reply in subscribed mode
    return args[0] if args else PONG


@command("echo", 2, flags=("fast",))
def echo(session: Session, args: list[bytes]) -> object:
    """ECHO message"""
    return args[0]


@command("quit", -1, flags=("allow_busy", "noscript", "loading", "stale", "fast", "no_auth"), in_multi="run", subscribed=True)
def quit_(session: Session, args: list[bytes]) -> object:
    """QUIT

    OK, then the server closes the connection.
    """
    session.conn.close_after_reply()
    return OK


@command("select", 2, flags=("loading", "stale", "fast"))
def select(session: Session, args: list[bytes]) -> object:
    """SELECT index

    Use database ``index`` (0-15) for the rest of the connection.
    """
    index = parse_int32(args[0])
    if not 0 <= index < len(session.keyspace.dbs):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    session.db = session.keyspace.dbs[index]
    return OK


# -- HELLO, AUTH, RESET ---------------------------------------------------------------

_NO_AUTH_FLAGS = ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")


@command("hello", -1, flags=_NO_AUTH_FLAGS)
def hello(session: Session, args: list[bytes]) -> object:
    """HELLO [protover [AUTH username password] [SETNAME clientname]]

    Switch the connection to RESP ``protover`` (2 or 3) and describe the
    server. As in Redis 7.0, the options take effect one by one, in order:
    a name set before a bad option stays set; the switch comes last.
    With requirepass, a client that is not authenticated once the options
    are read gets NOAUTH, and nothing changes: no name (Redis 7.0 would set
    it, 7.2 does not), no switch, no description of the server.
    """
    version = 0
    if args:
        try:
            version = parse_int(args[0])
        except CommandError:
            raise CommandError(errors.PROTOCOL_VERSION_NOT_INTEGER) from None
        if version not in (2, 3):
            raise CommandError(errors.NOPROTO)
    i = 1
    name = None  # a SETNAME given before authenticating, applied only after
    while i < len(args):
        option, more = args[i].upper(), len(args) - 1 - i
        if option == b"AUTH" and more >= 2:
            _authenticate(session, args[i + 1], args[i + 2])
            i += 3
        elif option == b"SETNAME" and more >= 1:
            if session.authenticated:
                _set_name(session, args[i + 1])
            elif not _valid_attribute(args[i + 1]):
                raise CommandError(errors.CLIENT_NAME_INVALID)
            else:
                name = args[i + 1]
            i += 2
        else:
            raise errors.hello_syntax(args[i])
    if not session.authenticated:
        raise CommandError(errors.HELLO_NOAUTH)
    if name is not None:
        session.name = name
    if version:
        session.resp = version
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": session.resp,
        b"id": session.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command("auth", -2, flags=_NO_AUTH_FLAGS)
def auth(session: Session, args: list[bytes]) -> object:
    """AUTH [username] password

    With --requirepass, the password unlocks the connection (user
    ``default``). With no password configured, only user ``default`` exists
    and it takes any password; the one-argument form is refused as Redis
    refuses it.
    """
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    if len(args) == 1:
        if not _required_password(session):
            raise CommandError(errors.AUTH_WITHOUT_PASSWORD)
        _authenticate(session, DEFAULT_USER, args[0])
    else:
        _authenticate(session, args[0], args[1])
    return OK


# A wrong password costs the client this long: guessing on one connection
# gets slow. Only the connection that failed waits (on its own worker,
# holding no lock); the server-wide bound on guesses is authguard.py's.
AUTH_FAILURE_DELAY_S = 0.1


def _required_password(session: Session) -> bytes | None:
    server = session.server
    password = getattr(server.config, "requirepass", None) if server is not None else None
    return password.encode() if password else None


def _authenticate(session: Session, username: bytes, password: bytes) -> None:
    required = _required_password(session)
    server = session.server
    guard = getattr(server, "auth_guard", None)
    peer = session.peer or "?"
    host = host_of(peer)
    # Past the rate of failures allowed (authguard.py), the password is not
    # even compared: WRONGPASS, as for a wrong one.
    tried = guard is None or guard.may_try(host)
    if tried:
        if username == DEFAULT_USER and (
            required is None or hmac.compare_digest(password, required)  # constant time
        ):
            session.authenticated = True
            return
    if server is not None:
        server.acl_access_denied_auth += 1  # INFO stats, as Redis 7.2
    if guard is not None:
        guard.failed(host, peer, tried=tried)  # logs the first, then one line a minute
    else:
        log.warning("failed AUTH from %s", peer)
    time.sleep(AUTH_FAILURE_DELAY_S)
    raise CommandError(errors.WRONGPASS)


@command("reset", 1, flags=_NO_AUTH_FLAGS, in_multi="run", subscribed=True)
def reset(session: Session, args: list[bytes]) -> object:
    """RESET

    Put the connection back as it was when it connected: database 0, RESP2,
    no name. (The library name and version stay, as in Redis.)
    """
    end_session(session)  # no transaction, no watched keys
    if session.subscriptions is not None:
        session.server.pubsub.unsubscribe_all(session)
    session.conn.enter_mode(NORMAL)  # no longer a monitor or a subscriber
    if session.tracking is not None:
        stop_tracking(session)  # CLIENT TRACKING off, as Redis's RESET
    session.db = session.keyspace.dbs[0]
    session.resp = 2
    session.name = b""
    session.authenticated = _required_password(session) is None  # as Redis: AUTH again
    return RESET


# -- CLIENT -----------------------------------------------------------------------------

CLIENT = container("client")


@command("client", -2)
def client(session: Session, args: list[bytes]) -> object:
    """CLIENT subcommand [argument ...]

    Inspect and manage client connections; CLIENT HELP lists the subcommands.
    """
    return CLIENT.run(session, args)


@CLIENT.subcommand("id", 2, flags=("noscript", "loading", "stale"))
def client_id(session: Session, args: list[bytes]) -> object:
    """CLIENT ID

    The current connection's id.
    """
    return session.id


@CLIENT.subcommand("unblock", -3, flags=("admin", "noscript", "loading", "stale"))
def client_unblock(session: Session, args: list[bytes]) -> object:
    """CLIENT UNBLOCK client-id [TIMEOUT | ERROR]

    End another client's wait in a blocking command, as if it timed out
    (or with the UNBLOCKED error); 1 if it was blocked, else 0.
    """
    from kvserver.blocking import unblock  # blocking imports the commands package

    wanted = parse_int(args[0])
    error = False
    if len(args) == 2:
        reason = args[1].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            raise CommandError(errors.UNBLOCK_REASON)
        error = reason == b"ERROR"
    elif len(args) > 2:
        raise errors.wrong_arity("client|unblock")
    for other in session.server.sessions():
        if other.id == wanted:
            return 1 if unblock(session.keyspace, other, error) else 0
    return 0


@CLIENT.subcommand("getname", 2, flags=("noscript", "loading", "stale"))
def client_getname(session: Session, args: list[bytes]) -> object:
    """CLIENT GETNAME

    The current connection's name, or nil.
    """
    return session.name or None


@CLIENT.subcommand("setname", 3, flags=("noscript", "loading", "stale"))
def client_setname(session: Session, args: list[bytes]) -> object:
    """CLIENT SETNAME connection-name

    Name the current connection; an empty name removes it.
    """
    _set_name(session, args[0])
    return OK


def _valid_attribute(value: bytes) -> bool:
    # Redis keeps CLIENT LIST splittable on spaces: printable ASCII only.
    return all(0x21 <= byte <= 0x7E for byte in value)


def _set_name(session: Session, name: bytes) -> None:
    if not _valid_attribute(name):
        raise CommandError(errors.CLIENT_NAME_INVALID)
    session.name = name


@CLIENT.subcommand("setinfo", 4, flags=("noscript", "loading", "stale"))
def client_setinfo(session: Session, args: list[bytes]) -> object:
    """CLIENT SETINFO LIB-NAME libname | LIB-VER libver

    Record the client library's name or version (shown by CLIENT LIST).
    Redis 7.2's subcommand: redis-py and other clients send it on connect.
    """
    attribute, value = args
    which = attribute.lower()
    if which not in (b"lib-name", b"lib-ver"):
        raise errors.unrecognized_option(attribute)
    if not _valid_attribute(value):
        raise errors.client_attr_invalid(attribute)
    if which == b"lib-name":
        session.lib_name = value
    else:
        session.lib_ver = value
    return OK


@CLIENT.subcommand("info", 2, flags=("noscript", "loading", "stale"))
def client_info(session: Session, args: list[bytes]) -> object:
    """CLIENT INFO

    The current connection, in CLIENT LIST's format.
    """
    return Verbatim(client_line(session, session.now) + b"\n")


@CLIENT.subcommand("list", -2, flags=("admin", "noscript", "loading", "stale"))
def client_list(session: Session, args: list[bytes]) -> object:
    """CLIENT LIST [TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id ...]

    One line per connected client: id, addresses, name, age, idle time,
    database, last command, protocol, library.
    """
    sessions = session.server.sessions()
    if len(args) == 2 and args[0].upper() == b"TYPE":
        kind = args[1].lower()
        if kind not in CLIENT_TYPES:
            raise errors.unknown_client_type(args[1])
        sessions = [s for s in sessions if _client_type(s) == kind]
    elif len(args) > 1 and args[0].upper() == b"ID":
        by_id = {s.id: s for s in sessions}
        sessions = []
        for raw in args[1:]:
            try:
                wanted = parse_int(raw)
            except CommandError:
                raise CommandError(errors.INVALID_CLIENT_ID) from None
            if wanted in by_id:
                sessions.append(by_id[wanted])
    elif args:
        raise CommandError(errors.SYNTAX)
    now = session.now
    return Verbatim(b"".join(client_line(s, now) + b"\n" for s in sessions))


def client_line(s: Session, now_ms: int) -> bytes:
    """One client as CLIENT LIST shows it (Redis 7.2's fields, in order).

    ``oll`` and ``omem`` are the replies the kernel has not taken yet (the
    client output buffer: chunks and bytes); the other buffer and memory
    fields are 0. ``idle`` counts from the start of the client's last command.
    """
    created_ms = int(s.created * 1000)
    last_ms = s.now or created_ms
    age = max(0, now_ms - created_ms) // 1000
    idle = max(0, now_ms - last_ms) // 1000
    pending_chunks, pending_bytes = s.conn.output_stats()
    subs = s.subscriptions
    mode = s.conn.mode
    return (
        b"id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d "
        b"sub=%d psub=%d ssub=%d multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 "
        b"rbs=0 rbp=0 obl=0 oll=%d omem=%d tot-mem=%d events=r cmd=%s user=default "
        b"redir=-1 resp=%d lib-name=%s lib-ver=%s"
        % (
            s.id,
            s.peer.encode(),
            s.local.encode(),
            s.fd,
            s.name,
            age,
            idle,
            # O: a MONITOR client, P: a subscriber, b: blocked on keys, as Redis shows them.
            b"O" if mode is MONITOR else b"P" if mode is SUBSCRIBED else b"b" if s.waiter is not None else b"N",
            s.db.index,
            len(subs.channels) if subs else 0,
            len(subs.patterns) if subs else 0,
            len(subs.shard) if subs else 0,
            pending_chunks,
            pending_bytes,
            pending_bytes,
            s.last_command.encode(),
            s.resp,
            s.lib_name,
            s.lib_ver,
        )
    )


@CLIENT.subcommand("kill", -3, flags=("admin", "noscript", "loading", "stale"))
def client_kill(session: Session, args: list[bytes]) -> object:
    """CLIENT KILL ip:port | [ID client-id] [TYPE NORMAL | MASTER | REPLICA | PUBSUB] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME YES | NO]

    Close the matching connections: OK (or an error if none matched) for
    the old ip:port form, else how many were closed. A connection killing
    itself gets its reply first.
    """
    addr = laddr = kind = None
    wanted_id = 0
    skipme = True
    if len(args) == 1:  # the old form, which may kill the caller too
        addr = args[0]
        skipme = False
    else:
        i = 0
        while i < len(args):
            option, has_value = args[i].upper(), i + 1 < len(args)
            if not has_value:
                raise CommandError(errors.SYNTAX)
            value = args[i + 1]
            if option == b"ID":
                try:
                    wanted_id = parse_int(value)
                except CommandError:
                    wanted_id = 0
                if wanted_id <= 0:
                    raise CommandError(errors.CLIENT_ID_NOT_POSITIVE)
            elif option == b"TYPE":
                kind = value.lower()
                if kind not in CLIENT_TYPES:
                    raise errors.unknown_client_type(value)
            elif option == b"ADDR":
                addr = value
            elif option == b"LADDR":
                laddr = value
            elif option == b"USER":
                if value != DEFAULT_USER:
                    raise errors.no_such_user(value)
            elif option == b"SKIPME":
                if value.lower() not in (b"yes", b"no"):
                    raise CommandError(errors.SYNTAX)
                skipme = value.lower() == b"yes"
            else:
                raise CommandError(errors.SYNTAX)
            i += 2
    killed = 0
    for other in session.server.sessions():
        if addr is not None and other.peer.encode() != addr:
            continue
        if laddr is not None and other.local.encode() != laddr:
            continue
        if kind is not None and kind != _client_type(other):
            continue
        if wanted_id and other.id != wanted_id:
            continue
        if other is session:
            if skipme:
                continue
            session.conn.close_after_reply()  # as Redis's CLOSE_AFTER_REPLY
        else:
            other.conn.kill()
        killed += 1
    if len(args) == 1:
        if not killed:
            raise CommandError(errors.NO_SUCH_CLIENT)
        return OK
    return killed


@CLIENT.subcommand("no-evict", 3, flags=("admin", "noscript", "loading", "stale"))
def client_no_evict(session: Session, args: list[bytes]) -> object:
    """CLIENT NO-EVICT ON | OFF

    Accepted and ignored: kvserver never evicts clients.
    """
    if args[0].upper() not in (b"ON", b"OFF"):
        raise CommandError(errors.SYNTAX)
    return OK


@CLIENT.subcommand("reply", 3, flags=("noscript", "loading", "stale"))
def client_reply(session: Session, args: list[bytes]) -> object:
    """CLIENT REPLY ON | OFF | SKIP

    ON (the default) is acknowledged; OFF and SKIP are refused, since this
    server always replies.
    """
    mode = args[0].upper()
    if mode == b"ON":
        return OK
    if mode in (b"OFF", b"SKIP"):
        raise CommandError(errors.CLIENT_REPLY_UNSUPPORTED)
    raise CommandError(errors.SYNTAX)


# -- client-side caching: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO ----------------
#
# The bookkeeping and the messages are kvserver/tracking.py; these parse
# and check, as Redis's clientCommand does, and change it under the write
# lock, which orders them against the writes that invalidate.

_TRACKING_OPTIONS = (b"BCAST", b"OPTIN", b"OPTOUT", b"NOLOOP")


@CLIENT.subcommand("tracking", -3, flags=("noscript", "loading", "stale"))
def client_tracking(session: Session, args: list[bytes]) -> object:
    """CLIENT TRACKING ON | OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]

    Enable or disable server-assisted client-side caching: the client is
    told when a key it read (or, with BCAST, any key with a prefix) changes.
    """
    redirect = 0
    options: set[bytes] = set()
    prefixes: list[bytes] = []
    i = 1
    while i < len(args):
        option, more = args[i].upper(), i + 1 < len(args)
        if option == b"REDIRECT" and more:
            i += 1
            if redirect:
                raise CommandError(errors.TRACKING_ONE_REDIRECT)
            redirect = parse_int(args[i])
            if redirect not in session.server.clients:
                raise CommandError(errors.TRACKING_NO_REDIRECT_CLIENT)
        elif option in _TRACKING_OPTIONS:
            options.add(option)
        elif option == b"PREFIX" and more:
            i += 1
            prefixes.append(args[i])
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    switch = args[0].upper()
    if switch == b"OFF":
        stop_tracking(session)
        return OK
    if switch != b"ON":
        raise CommandError(errors.SYNTAX)
    mine = session.tracking
    bcast = b"BCAST" in options
    if prefixes and not bcast:
        raise CommandError(errors.TRACKING_PREFIX_NEEDS_BCAST)
    if mine is not None and mine.bcast != bcast:
        raise CommandError(errors.TRACKING_BCAST_SWITCH)
    if bcast and (b"OPTIN" in options or b"OPTOUT" in options):
        raise CommandError(errors.TRACKING_BCAST_OPTIN)
    if b"OPTIN" in options and b"OPTOUT" in options:
        raise CommandError(errors.TRACKING_OPTIN_AND_OPTOUT)
    if mine is not None and (
        (b"OPTIN" in options and mine.optout) or (b"OPTOUT" in options and mine.optin)
    ):
        raise CommandError(errors.TRACKING_OPT_SWITCH)
    if bcast:
        _check_prefixes(mine.prefixes if mine is not None else {}, prefixes)
    keyspace = session.keyspace
    with keyspace.write_lock:
        tracking = keyspace.tracking
        if tracking is None:
            tracking = Tracking(session.server.clients)
            keyspace.set_tracking(tracking)
        tracking.enable(session, redirect, options, prefixes)
    return OK


def _check_prefixes(existing: dict[bytes, None], prefixes: list[bytes]) -> None:
    """No prefix may be a prefix of another of the client's (Redis's
    checkPrefixCollisionsOrReply). Redis 7.0 replies with the error and
    then OK, and enables tracking anyway, when the overlap is between two
    new prefixes past the first; here that is only the error."""
    for i, prefix in enumerate(prefixes):
        for old in sorted(existing):  # in Redis's (radix tree) order
            if old.startswith(prefix) or prefix.startswith(old):
                raise CommandError(errors.tracking_prefix_overlap(prefix, old))
        for other in prefixes[i + 1 :]:
            if other.startswith(prefix) or prefix.startswith(other):
                raise CommandError(errors.tracking_prefixes_overlap(prefix, other))


def stop_tracking(session: Session) -> None:
    """Tracking off for ``session`` (CLIENT TRACKING OFF, RESET, its end);
    with nobody left tracking, the keyspace stops looking."""
    keyspace = session.keyspace
    with keyspace.write_lock:
        tracking = keyspace.tracking
        if tracking is None:
            session.tracking = None
            return
        tracking.disable(session)
        if not tracking.sessions:
            keyspace.set_tracking(None)


@CLIENT.subcommand("caching", 3, flags=("noscript", "loading", "stale"))
def client_caching(session: Session, args: list[bytes]) -> object:
    """CLIENT CACHING YES | NO

    With OPTIN (YES) or OPTOUT (NO) tracking: whether the keys of the next
    command are tracked.
    """
    mine = session.tracking
    if mine is None:
        raise CommandError(errors.CACHING_NOT_TRACKING)
    answer = args[0].upper()
    if answer == b"YES":
        if not mine.optin:
            raise CommandError(errors.CACHING_YES_NOT_OPTIN)
    elif answer == b"NO":
        if not mine.optout:
            raise CommandError(errors.CACHING_NO_NOT_OPTOUT)
    else:
        raise CommandError(errors.SYNTAX)
    mine.caching = True
    return OK


@CLIENT.subcommand("getredir", 2, flags=("noscript", "loading", "stale"))
def client_getredir(session: Session, args: list[bytes]) -> object:
    """CLIENT GETREDIR

    The id invalidations are redirected to: 0 if none, -1 if tracking is off.
    """
    mine = session.tracking
    return mine.redirect if mine is not None else -1


@CLIENT.subcommand("trackinginfo", 2, flags=("noscript", "loading", "stale"))
def client_trackinginfo(session: Session, args: list[bytes]) -> object:
    """CLIENT TRACKINGINFO

    The client's tracking flags, redirect id and BCAST prefixes.
    """
    mine = session.tracking
    if mine is None:
        return {b"flags": SetReply([b"off"]), b"redirect": -1, b"prefixes": []}
    flags = [b"on"]
    if mine.bcast:
        flags.append(b"bcast")
    if mine.optin:
        flags.append(b"optin")
        if mine.caching:
            flags.append(b"caching-yes")
    if mine.optout:
        flags.append(b"optout")
        if mine.caching:
            flags.append(b"caching-no")
    if mine.noloop:
        flags.append(b"noloop")
    if mine.broken:
        flags.append(b"broken_redirect")
    return {b"flags": SetReply(flags), b"redirect": mine.redirect, b"prefixes": sorted(mine.prefixes)}
