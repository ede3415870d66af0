"""Pub/sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.

The registry and delivery are kvserver/pubsub.py (``session.server.pubsub``);
these commands only read their arguments, ask it, and switch their own
connection in and out of subscribed mode (``session.conn.enter_mode``):
there, in RESP2, only the commands registered ``subscribed=True`` run
(client.py). The confirmations are the command's reply, a ``Pushes``: RESP3
sends each as a push frame, RESP2 as an array, the text port as a line.

As in Redis 7.0, PUBLISH is not written to the log (its effect is on the
clients connected now, not on the data) and, in MULTI or a script,
delivers as it runs.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.containers import container
from kvserver.commands.registry import command
from kvserver.pubsub import CHANNELS, PATTERNS, SHARD
from kvserver.protocol import Push, Pushes
from kvserver.session import NORMAL, SUBSCRIBED, Session

_FLAGS = ("pubsub", "noscript", "loading", "stale")
_PUBLISH_FLAGS = ("pubsub", "loading", "stale", "fast")


def _subscribe(session: Session, kind: str, word: bytes, names: list[bytes]) -> Pushes:
    counts = session.server.pubsub.subscribe(session, kind, names)
    conn = session.conn
    if conn.mode is NORMAL:
        conn.enter_mode(SUBSCRIBED)
    return Pushes(Push([word, name, count]) for name, count in zip(names, counts))


def _unsubscribe(session: Session, kind: str, word: bytes, names: list[bytes]) -> Pushes:
    replies = session.server.pubsub.unsubscribe(session, kind, names)
    conn = session.conn
    if conn.mode is SUBSCRIBED and not session.subscriptions.total():
        conn.enter_mode(NORMAL)
    return Pushes(Push([word, name, count]) for name, count in replies)


@command("subscribe", -2, flags=_FLAGS, subscribed=True)
def subscribe(session: Session, args: list[bytes]) -> object:
    """SUBSCRIBE channel [channel ...]

    Receive the messages published to each channel, from now on.
    """
    return _subscribe(session, CHANNELS, b"subscribe", args)


@command("unsubscribe", -1, flags=_FLAGS, subscribed=True)
def unsubscribe(session: Session, args: list[bytes]) -> object:
    """UNSUBSCRIBE [channel [channel ...]]

    Stop receiving the channels' messages (every channel's, with none).
    """
    return _unsubscribe(session, CHANNELS, b"unsubscribe", args)


@command("psubscribe", -2, flags=_FLAGS, subscribed=True)
def psubscribe(session: Session, args: list[bytes]) -> object:
    """PSUBSCRIBE pattern [pattern ...]

    Receive the messages published to every channel matching each glob pattern.
    """
    return _subscribe(session, PATTERNS, b"psubscribe", args)


@command("punsubscribe", -1, flags=_FLAGS, subscribed=True)
def punsubscribe(session: Session, args: list[bytes]) -> object:
    """PUNSUBSCRIBE [pattern [pattern ...]]

    Stop receiving the patterns' messages (every pattern's, with none).
    """
    return _unsubscribe(session, PATTERNS, b"punsubscribe", args)


@command("ssubscribe", -2, keys=(1, -1, 1), flags=_FLAGS, subscribed=True, reads_keys=False)
def ssubscribe(session: Session, args: list[bytes]) -> object:
    """SSUBSCRIBE shardchannel [shardchannel ...]

    Receive the messages published to each shard channel (SPUBLISH).
    """
    return _subscribe(session, SHARD, b"ssubscribe", args)


@command("sunsubscribe", -1, keys=(1, -1, 1), flags=_FLAGS, subscribed=True, reads_keys=False)
def sunsubscribe(session: Session, args: list[bytes]) -> object:
    """SUNSUBSCRIBE [shardchannel [shardchannel ...]]

    Stop receiving the shard channels' messages (every one's, with none).
    """
    return _unsubscribe(session, SHARD, b"sunsubscribe", args)


@command("publish", 3, flags=_PUBLISH_FLAGS)
def publish(session: Session, args: list[bytes]) -> object:
    """PUBLISH channel message

    Send ``message`` to the channel's subscribers; how many received it.
    """
    return session.server.pubsub.publish(args[0], args[1])


@command("spublish", 3, keys=(1, 1, 1), flags=_PUBLISH_FLAGS, reads_keys=False)
def spublish(session: Session, args: list[bytes]) -> object:
    """SPUBLISH shardchannel message

    Send ``message`` to the shard channel's subscribers; how many received it.
    """
    return session.server.pubsub.publish(args[0], args[1], shard=True)


# -- PUBSUB --------------------------------------------------------------------------------

PUBSUB = container("pubsub")
_SUB_FLAGS = ("pubsub", "loading", "stale")


@command("pubsub", -2)
def pubsub(session: Session, args: list[bytes]) -> object:
    """PUBSUB subcommand [argument ...]

    Inspect the pub/sub state; PUBSUB HELP lists the subcommands.
    """
    return PUBSUB.run(session, args)


@PUBSUB.subcommand("channels", -2, flags=_SUB_FLAGS)
def pubsub_channels(session: Session, args: list[bytes]) -> object:
    """PUBSUB CHANNELS [pattern]

    The channels with at least one subscriber (matching ``pattern``).
    """
    if len(args) > 1:
        raise errors.subcommand_syntax(b"CHANNELS", "pubsub")
    return session.server.pubsub.active(args[0] if args else None)


@PUBSUB.subcommand("numsub", -2, flags=_SUB_FLAGS)
def pubsub_numsub(session: Session, args: list[bytes]) -> object:
    """PUBSUB NUMSUB [channel [channel ...]]

    Each channel and its number of subscribers (patterns not counted).
    """
    return session.server.pubsub.numsub(args)


@PUBSUB.subcommand("numpat", 2, flags=_SUB_FLAGS)
def pubsub_numpat(session: Session, args: list[bytes]) -> object:
    """PUBSUB NUMPAT

    The number of patterns subscribed to, by any client.
    """
    return session.server.pubsub.numpat()


@PUBSUB.subcommand("shardchannels", -2, flags=_SUB_FLAGS)
def pubsub_shardchannels(session: Session, args: list[bytes]) -> object:
    """PUBSUB SHARDCHANNELS [pattern]

    The shard channels with at least one subscriber (matching ``pattern``).
    """
    if len(args) > 1:
        raise errors.subcommand_syntax(b"SHARDCHANNELS", "pubsub")
    return session.server.pubsub.active(args[0] if args else None, shard=True)


@PUBSUB.subcommand("shardnumsub", -2, flags=_SUB_FLAGS)
def pubsub_shardnumsub(session: Session, args: list[bytes]) -> object:
    """PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]

    Each shard channel and its number of subscribers.
    """
    return session.server.pubsub.numsub(args, shard=True)

