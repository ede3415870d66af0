"""Every error kvserver can report, and every message string it uses.

Two kinds of error, as in Redis:

* ``CommandError``: the request was understood but cannot be carried out
  (wrong arity, not an integer, unknown command...). It becomes an error reply
  and the connection goes on.
* ``ProtocolError``: the byte stream itself is unusable (a line past the size
  limit, a RESP frame that does not parse). It gets one error reply and then
  that connection, and only that one, is closed.

Messages are Redis 7's wording so that clients and people who know Redis see
what they expect. They live here and nowhere else; code refers to the
constants or the small builder functions below.
"""

from __future__ import annotations


class KvError(Exception):
    """Base for errors whose text is sent to a client as an error reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message  # full text with its prefix, e.g. "ERR syntax error"


class CommandError(KvError):
    """A reply-level error: answered, and the connection continues."""


class ProtocolError(KvError):
    """A stream-level error: answered, then the connection is closed."""


class AofError(Exception):
    """The append-only log cannot be opened, read or written."""


class AofCorruptError(AofError):
    """A record in the middle of the log is damaged: start-up must stop."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"Bad file format reading the append only file {path!s} at byte offset "
            f"{offset}: {reason}. Make a backup of the file, then repair it with "
            f"'kv-check-aof --fix {path!s}'"
        )
        self.path = path
        self.offset = offset
        self.reason = reason


# --- command errors (replies) ---------------------------------------------

SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request"
REWRITE_IN_PROGRESS = "ERR Background append only file rewriting already in progress"
INTERNAL_ERROR = "ERR internal error, see the server log"
DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"
EXPIRE_NX_CONFLICT = "ERR NX and XX, GT or LT options at the same time are not compatible"
EXPIRE_GT_LT_CONFLICT = "ERR GT and LT options at the same time are not compatible"
# Keyspace commands (keyspace.py)
NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
INVALID_CURSOR = "ERR invalid cursor"
INVALID_FIRST_DB_INDEX = "ERR invalid first DB index"
INVALID_SECOND_DB_INDEX = "ERR invalid second DB index"
# String commands (strings.py)
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_FLOAT = "ERR value is not a valid float"
INCR_OVERFLOW = "ERR increment or decrement would overflow"
DECR_OVERFLOW = "ERR decrement would overflow"
FLOAT_NAN_OR_INFINITY = "ERR increment would produce NaN or Infinity"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
# List commands (commands/lists.py): Redis 7.0's t_list.c texts.
INDEX_OUT_OF_RANGE = "ERR index out of range"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
NUMKEYS_NOT_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_NOT_POSITIVE = "ERR count should be greater than 0"
GETKEYS_INVALID_ARGUMENTS = "ERR Invalid arguments specified for command"  # COMMAND GETKEYS LMPOP 0 ...
# Set commands (sets.py; MUST_BE_POSITIVE and NUMKEYS_NOT_POSITIVE above too)
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
# OBJECT (objectcmd.py)
OBJECT_FREQ_NOT_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that "
    "when switching between policies at runtime LRU and LFU data will take some time to adjust."
)
# Bitmaps and LCS (bitmaps.py, lcs.py)
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BIT_ARGUMENT = "ERR The bit argument must be 1 or 0."
BITFIELD_TYPE = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"
BITOP_NOT_ONE_KEY = "ERR BITOP NOT must be called with a single source key."
LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_LONG = "ERR String too long for LCS"
LCS_TOO_MUCH_MEMORY = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
# Hash commands (hashes.py)
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
NAN_OR_INFINITY = "ERR value is NaN or Infinity"
VALUE_OUT_OF_RANGE = "ERR value is out of range"
# Ours, not Redis's (which tries, and runs out of memory): see hashes.py.
RANDOM_COUNT_TOO_LARGE = "ERR count is too large for one reply"


def unsupported_option(option: bytes) -> str:
    return f"ERR Unsupported option {_text(option)}"


def unknown_command(name: bytes, args: list[bytes]) -> CommandError:
    """Redis 7's text, byte for byte: each argument quoted and followed by a
    space, the list cut once it passes 128 characters, CR/LF blanked out."""
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += "'" + _text(arg)[: 128 - len(shown)] + "' "
    message = f"ERR unknown command '{_text(name)[:128]}', with args beginning with: {shown}"
    return CommandError(message.replace("\r", " ").replace("\n", " "))


def exec_aborted(reason: str) -> CommandError:
    """EXEC itself refused (wrong arity, OOM): Redis's execCommandAbort, with
    the reason's ERR dropped and any other code kept."""
    return CommandError("EXECABORT Transaction discarded because of: " + reason.removeprefix("ERR "))


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def invalid_expire(name: str) -> CommandError:
    return CommandError(f"ERR invalid expire time in '{name}' command")


def out_of_range(low: int, high: int) -> CommandError:
    # Redis's getRangeLongFromObjectOrReply, e.g. a DB index past 32 bits.
    return CommandError(f"ERR value is out of range, value must between {low} and {high}")


# AofError's reason for a write that comes after shutdown closed the log
# (from a worker still running past the shutdown deadline): refused, as a
# write the disk refused is (log_write_failed).
AOF_CLOSED = "the log is closed: the server is shutting down"


def log_write_failed(reason: str) -> CommandError:
    # Redis answers writes with -MISCONF when it cannot persist; the reason
    # tells the operator what the disk said.
    return CommandError(
        "MISCONF Errors writing to the AOF file: " + reason
    )


# Connection and server commands (commands/connection.py, introspection.py,
# configcmd.py, info.py, server.py)
NOPROTO = "NOPROTO unsupported protocol version"
PROTOCOL_VERSION_NOT_INTEGER = "ERR Protocol version is not an integer or out of range"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOAUTH = "NOAUTH Authentication required."
# Redis 7.0's helloCommand, word for word (7.2 added "<proto>" after HELLO).
HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    "the RESP protocol version at the same time"
)
# SHUTDOWN (commands/server.py)
NO_SHUTDOWN_IN_PROGRESS = "ERR No shutdown in progress."
SHUTDOWN_FAILED = "ERR Errors trying to SHUTDOWN. Check logs."
# Until kvserver writes RDB snapshots, SHUTDOWN SAVE has nothing to save with.
# Transactions (commands/transactions.py)
NOT_IN_MULTI = "ERR Command not allowed inside a transaction"
MULTI_NESTED = "ERR MULTI calls can not be nested"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
MONITOR_IN_TRANSACTION = "ERR MONITOR isn't allowed for DENY BLOCKING client"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
OOM = "OOM command not allowed when used memory > 'maxmemory'."
AUTH_WITHOUT_PASSWORD = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
CLIENT_NAME_INVALID = "ERR Client names cannot contain spaces, newlines or special characters."
INVALID_CLIENT_ID = "ERR Invalid client ID"
CLIENT_ID_NOT_POSITIVE = "ERR client-id should be greater than 0"
NO_SUCH_CLIENT = "ERR No such client"
# kvserver cannot hold replies back; Redis would send none at all.
CLIENT_REPLY_UNSUPPORTED = "ERR CLIENT REPLY OFF and SKIP are not supported by this server"
CONFIG_WITHOUT_FILE = "ERR The server is running without a config file"
# Redis's prefix for a failed CONFIG REWRITE; kvserver leaves --config files alone.
CONFIG_REWRITE_UNSUPPORTED = "ERR Rewriting config file: not supported, edit the file by hand"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
GETKEYS_INVALID_COMMAND = "ERR Invalid command specified"
GETKEYS_NO_KEYS = "ERR The command has no key arguments"
GETKEYS_WRONG_ARITY = "ERR Invalid number of arguments specified for command"
SLOWLOG_COUNT = "ERR count should be greater than or equal to -1"
# A MONITOR client sending a command that reads or writes keys (Redis flags
# monitors as replicas, hence the words).
REPLICA_KEYSPACE = "ERR Replica can't interact with the keyspace"


def must_be_between(low: int, high: int) -> str:
    # CONFIG SET's reason for a number out of a setting's range.
    return f"argument must be between {low} and {high} inclusive"


def unknown_subcommand(sub: bytes, container: str) -> CommandError:
    return CommandError(
        f"ERR unknown subcommand '{_text(sub)[:128]}'. Try {container.upper()} HELP."
    )


def subcommand_syntax(sub: bytes, container: str) -> CommandError:
    # Redis's addReplySubcommandSyntaxError (DEBUG uses it).
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{_text(sub)[:128]}'. "
        f"Try {container.upper()} HELP."
    )


def hello_syntax(option: bytes) -> CommandError:
    return CommandError(f"ERR Syntax error in HELLO option '{_text(option)}'")


def client_attr_invalid(attr: bytes) -> CommandError:
    return CommandError(f"ERR {_text(attr)} cannot contain spaces, newlines or special characters.")


def unrecognized_option(option: bytes) -> CommandError:
    return CommandError(f"ERR Unrecognized option '{_text(option)}'")


def unknown_client_type(name: bytes) -> CommandError:
    return CommandError(f"ERR Unknown client type '{_text(name)}'")


def no_such_user(name: bytes) -> CommandError:
    return CommandError(f"ERR No such user '{_text(name)}'")


def config_set_unknown(name: bytes) -> CommandError:
    return CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{_text(name)}'")


def config_set_failed(name: bytes | str, reason: str) -> CommandError:
    shown = name if isinstance(name, str) else _text(name)
    return CommandError(f"ERR CONFIG SET failed (possibly related to argument '{shown}') - {reason}")


# --- HyperLogLog (commands/hyperloglog.py) ----------------------------------

# A string that is not a HyperLogLog by its header (Redis's isHLLObjectOrReply).
HLL_WRONGTYPE = "WRONGTYPE Key is not a valid HyperLogLog string value."
# A HyperLogLog header over registers that do not add up.
HLL_CORRUPT = "INVALIDOBJ Corrupted HLL object detected"


# --- protocol errors (reply, then close) ----------------------------------

TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
QUERY_BUFFER_LIMIT = "ERR Protocol error: client query buffer limit reached"
# Redis 6.2.6+ (CVE-2021-32675): before AUTH, a request may not declare more
# than 10 elements or a bulk longer than 16 KiB (networking.c).
UNAUTHENTICATED_MULTIBULK = "ERR Protocol error: unauthenticated multibulk length"
UNAUTHENTICATED_BULK = "ERR Protocol error: unauthenticated bulk length"
MAX_CLIENTS_REACHED = "ERR max number of clients reached"
# No thread could be started for a new client (the system's thread or
# memory limit, not maxclients): Redis's words for a client it cannot take,
# then why, so that a client library's handling of the first still applies.
WORKER_START_FAILED = (
    "ERR max number of clients reached (the server could not start a thread for this connection)"
)
# Redis 7's answer to a non-loopback client in protected mode, word for word.
PROTECTED_MODE_DENIED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to Redis you may "
    "adopt one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    "the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    "from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    "Alternatively you can just disable the protected mode by editing the Redis configuration "
    "file, and setting the protected mode option to 'no', and then restarting the server. 3) If "
    "you started the server manually just for testing, restart it with the '--protected-mode "
    "no' option. 4) Set up an authentication password for the default user. NOTE: You only "
    "need to do one of the above things in order for the server to start accepting "
    "connections from the outside."
)


def protocol_error(detail: str) -> ProtocolError:
    return ProtocolError(f"ERR Protocol error: {detail}")


def _text(raw: bytes) -> str:
    """Bytes as Redis prints them inside an error message (lossy, for humans)."""
    return raw.decode("utf-8", "replace")


# Scripts and functions (commands/scripting.py, commands/functions.py,
# kvserver/scripting/): Redis 7.0's texts, byte for byte.
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NUMKEYS_TOO_BIG = "ERR Number of keys can't be greater than number of args"
NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative"
BUSY_SCRIPT = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. "
    "You can either wait the script termination or kill the server in a hard way using "
    "the SHUTDOWN NOSAVE command."
)
SCRIPT_KILLED = "ERR Script killed by user with SCRIPT KILL..."
SCRIPT_FLUSH_OPTION = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
FUNCTION_FLUSH_OPTION = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
# What a script's redis.call / redis.pcall answers (script_lua.c).
SCRIPT_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
SCRIPT_BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
SCRIPT_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
SCRIPT_WRONG_ARITY = "ERR Wrong number of args calling Redis command from script"
SCRIPT_NOSCRIPT_COMMAND = "ERR This Redis command is not allowed from script"
SCRIPT_READONLY_WRITE = "ERR Write commands are not allowed from read-only scripts."
SCRIPT_RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
SCRIPT_WRONG_ARGS = "ERR wrong number or type of arguments"  # error_reply / status_reply
SCRIPT_SHA1HEX_ARGS = "ERR wrong number of arguments"
SCRIPT_LOG_ARGS = "ERR redis.log() requires two arguments or more."
SCRIPT_LOG_LEVEL = "ERR Invalid debug level."
SCRIPT_SETRESP_ARGS = "ERR redis.setresp() requires one argument."
SCRIPT_SETRESP_VERSION = "ERR RESP version must be 2 or 3."
SCRIPT_REPL_FLAGS = "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
# The sandbox (Redis 7.0.15 makes the globals a read-only table).
LUA_READONLY_TABLE = "Attempt to modify a readonly table"
LUA_NO_GLOBAL = "Script attempted to access nonexistent global variable '%s'"
# FUNCTION (functions.c, function_lua.c)
FUNCTION_NOT_FOUND = "ERR Function not found"
LIBRARY_NOT_FOUND = "ERR Library not found"
LIBRARY_MISSING_METADATA = "ERR Missing library metadata"
LIBRARY_NO_NAME = "ERR Library name was not given"
LIBRARY_BAD_NAME = (
    "ERR Library names can only contain letters, numbers, or underscores(_) and must be "
    "at least one character long"
)
FUNCTION_BAD_NAME = (
    "ERR Function names can only contain letters, numbers, or underscores(_) and must be "
    "at least one character long"
)
NO_FUNCTIONS_REGISTERED = "ERR No functions registered"
REGISTER_ARGS = "ERR wrong number of arguments to redis.register_function"
REGISTER_UNKNOWN_FLAG = "ERR unknown flag given"
REGISTER_UNKNOWN_ARG = "ERR unknown argument given to redis.register_function"
REGISTER_NO_NAME = "ERR redis.register_function must get a function name argument"
REGISTER_NO_CALLBACK = "ERR redis.register_function must get a callback argument"
FUNCTION_EXISTS_IN_LIBRARY = "ERR Function already exists in the library"
FUNCTION_LIST_NO_PATTERN = "ERR library name argument was not given"
FUNCTION_RESTORE_BAD_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
FUNCTION_RESTORE_POLICY = "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
FUNCTION_RESTORE_FOREIGN = "ERR given type is not a function"


def script_compile_error(detail: str, function: bool = False) -> CommandError:
    if function:
        return CommandError("ERR Error compiling function: " + detail)
    return CommandError("ERR Error compiling script (new function): " + detail)


def engine_not_found(name: str) -> CommandError:
    return CommandError(f"ERR Engine '{name}' not found")


def invalid_metadata(field: str) -> CommandError:
    return CommandError(f"ERR Invalid metadata value given: {field}")


def library_exists(name: str) -> CommandError:
    return CommandError(f"ERR Library '{name}' already exists")


def library_exists_restoring(name: str) -> CommandError:
    # FUNCTION RESTORE's words for it (functions.c libraryJoin): no quotes.
    return CommandError(f"ERR Library {name} already exists")


def function_exists(name: str) -> CommandError:
    return CommandError(f"ERR Function {name} already exists")


def registering_failed(detail: str) -> CommandError:
    return CommandError("ERR Error registering functions: " + detail)


def function_list_unknown(arg: bytes) -> CommandError:
    return CommandError(f"ERR Unknown argument {_text(arg)}")
REGISTER_SINGLE_ARG = (
    "ERR calling redis.register_function with a single argument is only applicable to Lua "
    "table (representing named arguments)."
)

# --- sorted sets (commands/zsets.py; MUST_BE_POSITIVE, NUMKEYS_NOT_POSITIVE,
# COUNT_NOT_POSITIVE and LIMIT_NEGATIVE above too) ------------------------------
ZSET_NAN = "ERR resulting score is not a number (NaN)"
ZSET_XX_NX = "ERR XX and NX options at the same time are not compatible"
ZSET_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ZSET_INCR_PAIR = "ERR INCR option supports a single increment-element pair"
ZSET_NOT_FLOAT_RANGE = "ERR min or max is not a float"
ZSET_NOT_LEX_RANGE = "ERR min or max not valid string range item"
ZSET_WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
ZSET_LIMIT_NEEDS_BY = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
ZSET_WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"


def zset_needs_a_key(name: str) -> CommandError:
    return CommandError(f"ERR at least 1 input key is needed for '{name}' command")


# -- pub/sub (commands/pubsub.py, client.py's subscribed mode) ---------------------


def subscribed_only(name: str) -> CommandError:
    # Redis's processCommand, for a RESP2 client with subscriptions.
    return CommandError(
        f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET"
        " are allowed in this context"
    )


# --- geo (commands/geo.py) ---------------------------------------------------------------
GEO_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
GEO_NEED_RADIUS = "ERR need numeric radius"
GEO_NEGATIVE_RADIUS = "ERR radius cannot be negative"
GEO_NEED_WIDTH = "ERR need numeric width"
GEO_NEED_HEIGHT = "ERR need numeric height"
GEO_NEGATIVE_BOX = "ERR height or width cannot be negative"
GEO_COUNT = "ERR COUNT must be > 0"
GEO_ANY_NEEDS_COUNT = "ERR the ANY argument requires COUNT argument"
GEO_NO_MEMBER = "ERR could not decode requested zset member"


def geo_invalid_pair(longitude: float, latitude: float) -> CommandError:
    return CommandError("ERR invalid longitude,latitude pair %f,%f" % (longitude, latitude))


def geo_store_with(search_store: bool) -> CommandError:
    what = "GEOSEARCHSTORE" if search_store else "STORE option in GEORADIUS"
    return CommandError(f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")


def geo_exactly_one(options: str, name: bytes) -> CommandError:
    return CommandError(f"ERR exactly one of {options} can be specified for {_text(name)}")


# --- SORT (commands/sort.py) -------------------------------------------------------------
SORT_NOT_DOUBLE = "ERR One or more scores can't be converted into double"


# --- streams (commands/streams.py): Redis 7.0's t_stream.c texts ----------------
STREAM_INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
STREAM_INVALID_START = "ERR invalid start ID for the interval"
STREAM_INVALID_END = "ERR invalid end ID for the interval"
STREAM_ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
STREAM_ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
STREAM_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
STREAM_MAXLEN_AND_MINID = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
STREAM_MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
STREAM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
STREAM_LIMIT_WITHOUT_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
STREAM_LIMIT_WITHOUT_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
STREAM_XTRIM_NEEDS_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
STREAM_ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
STREAM_SETID_BELOW_GIVEN_MAX_DELETED = (
    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
)
STREAM_SETID_TOO_SMALL = "ERR The ID specified in XSETID is smaller than the target stream top item"
STREAM_SETID_ENTRIES_ADDED_SMALL = (
    "ERR The entries_added specified in XSETID is smaller than the target stream length"
)
STREAM_GROUP_IN_XREAD = "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
STREAM_NOACK_IN_XREAD = "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
STREAM_MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
STREAM_DOLLAR_IN_XREADGROUP = (
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of "
    "this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID "
    "would just return an empty result set."
)
STREAM_GREATER_IN_XREAD = (
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
)
# Redis 7.0 says XREAD for XREADGROUP too.
STREAM_UNBALANCED = "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
STREAM_TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
STREAM_TIMEOUT_NEGATIVE = "ERR timeout is negative"
# What a blocked XREADGROUP gets when its stream or group goes away (blocked.c).
STREAM_BLOCKED_KEY_DELETED = "UNBLOCKED the stream key no longer exists"
STREAM_BLOCKED_NOGROUP = "NOGROUP the consumer group this client was blocked on no longer exists"


def stream_block_in_script(command: str) -> str:
    return f"ERR {command} command is not allowed with BLOCK option from scripts"
STREAM_XGROUP_NEEDS_KEY = (
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
    "use the MKSTREAM option to create an empty stream automatically."
)
STREAM_ENTRIES_READ_INVALID = "ERR value for ENTRIESREAD must be positive or -1"
STREAM_BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
XCLAIM_BAD_MIN_IDLE = "ERR Invalid min-idle-time argument for XCLAIM"
XCLAIM_BAD_IDLE = "ERR Invalid IDLE option argument for XCLAIM"
XCLAIM_BAD_TIME = "ERR Invalid TIME option argument for XCLAIM"
XCLAIM_BAD_RETRYCOUNT = "ERR Invalid RETRYCOUNT option argument for XCLAIM"
XAUTOCLAIM_BAD_MIN_IDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
XAUTOCLAIM_COUNT = "ERR COUNT must be > 0"


def stream_nogroup(key: bytes, group: bytes, suffix: str = "") -> str:
    return f"NOGROUP No such key '{_text(key)}' or consumer group '{_text(group)}'{suffix}"


def stream_xgroup_nogroup(group: bytes, key: bytes) -> str:
    return f"NOGROUP No such consumer group '{_text(group)}' for key name '{_text(key)}'"


stream_xinfo_nogroup = stream_xgroup_nogroup


def xclaim_unrecognized(option: bytes) -> str:
    return f"ERR Unrecognized XCLAIM option '{_text(option)}'"


# -- DUMP / RESTORE, SAVE / BGSAVE (kvserver/commands/dump.py, server.py; Redis 7.0's cluster.c, rdb.c) --

DUMP_PAYLOAD_WRONG = "ERR DUMP payload version or checksum are wrong"
RESTORE_BAD_DATA = "ERR Bad data format"
RESTORE_BUSYKEY = "BUSYKEY Target key name already exists."
RESTORE_BAD_TTL = "ERR Invalid TTL value, must be >= 0"
RESTORE_BAD_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
RESTORE_BAD_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"
BGSAVE_IN_PROGRESS = "ERR Background save already in progress"
SAVE_FAILED = "ERR"  # Redis's SAVE replies a bare "ERR" when rdbSave fails


# --- blocking commands (kvserver/blocking.py, commands/blocking.py; TIMEOUT_NEGATIVE above) ---
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
# -- client-side caching (CLIENT TRACKING, CACHING) ----------------------------------------
TRACKING_ONE_REDIRECT = "ERR A client can only redirect to a single other client"
TRACKING_NO_REDIRECT_CLIENT = "ERR The client ID you want redirect to does not exist"
TRACKING_PREFIX_NEEDS_BCAST = "ERR PREFIX option requires BCAST mode to be enabled"
TRACKING_BCAST_SWITCH = (
    "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
    "re-enabling it with a different mode."
)
TRACKING_BCAST_OPTIN = "ERR OPTIN and OPTOUT are not compatible with BCAST"
TRACKING_OPTIN_AND_OPTOUT = "ERR You can't specify both OPTIN mode and OPTOUT mode"
TRACKING_OPT_SWITCH = (
    "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
    "re-enabling it with a different mode."
)
CACHING_NOT_TRACKING = (
    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
    "OPTOUT mode enabled"
)
CACHING_YES_NOT_OPTIN = "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
CACHING_NO_NOT_OPTOUT = "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."


def tracking_prefix_overlap(prefix: bytes, existing: bytes) -> str:
    return (
        f"ERR Prefix '{_text(prefix)}' overlaps with an existing prefix '{_text(existing)}'. "
        "Prefixes for a single client must not overlap."
    )


def tracking_prefixes_overlap(prefix: bytes, other: bytes) -> str:
    return (
        f"ERR Prefix '{_text(prefix)}' overlaps with another provided prefix '{_text(other)}'. "
        "Prefixes for a single client must not overlap."
    )
