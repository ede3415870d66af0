"""``kvserver --config FILE``: settings from a Redis-style configuration file.

The file holds one directive a line, ``name value``, as redis.conf does::

    # kvserver.conf
    port 7000
    resp-port 7001
    bind 127.0.0.1 ::1
    requirepass "correct horse battery staple"
    appendfsync always
    maxmemory 100mb

* Lines are split as Redis splits them (``sdssplitargs``, the text
  protocol's rules): double quotes with ``\\n``, ``\\xHH``... escapes, single
  quotes. A line whose first non-blank character is ``#`` is a comment;
  blank lines are skipped. Names are case-insensitive.
* The directives are kvserver's long options without their dashes
  (``maxclients``, ``resp-port``, ``slowlog-max-len``...), plus ``port`` and
  ``aof-path`` for the two positional arguments, plus every setting CONFIG
  SET can change that has no option of its own (``hash-max-listpack-entries
  128``, ``zset-max-listpack-value 64kb``...), applied as CONFIG SET would
  once the server is built. Flags take ``yes`` or
  ``no`` (``sched-batch no``). ``bind`` takes one address or several;
  ``maxmemory`` takes Redis's units (``100mb``, ``1gb``). When a directive
  is repeated, the last one counts.
* What the file sets is only a default: an option on the command line, or
  the KVSERVER_REQUIREPASS environment variable, overrides it (click's
  ``default_map``).
* An unknown directive, a bad value or unbalanced quotes stop start-up
  with Redis's "FATAL CONFIG FILE ERROR" naming the file, the line number
  and the line; a file that cannot be read stops it too.

The point (issue 7): ``requirepass`` can live in a file readable by the
server's user alone rather than in ``ps``. A file that every user can read
and that holds requirepass gets a warning at start-up.
"""

from __future__ import annotations

import os
import stat

import click

from kvserver import __version__
from kvserver.config import parse_memory
from kvserver.errors import CommandError
from kvserver.protocol.text import split_args

# ctx.meta key: warnings found while reading the file, logged by the
# command once logging is set up.
WARNINGS = "kvserver.configfile.warnings"
# ctx.meta key: the (name, value) settings for CONFIG SET (see the docstring).
LIVE_SETTINGS = "kvserver.configfile.live_settings"

BAD_DIRECTIVE = "Bad directive or wrong number of arguments"  # Redis's words
UNBALANCED = "Unbalanced quotes in configuration line"  # Redis's words

_MEMORY_DIRECTIVES = {"maxmemory", "hll-sparse-max-bytes"}
# Directives whose one value is several words, as redis.conf writes them
# (``client-output-buffer-limit normal 32mb 8mb 60``): joined back together.
_SPACED_DIRECTIVES = {"client-output-buffer-limit"}


class ConfigFileError(Exception):
    """The file cannot be used; the message is what to print."""


def directives(command: click.Command) -> dict[str, click.Parameter]:
    """Directive name -> the command's parameter it sets."""
    found: dict[str, click.Parameter] = {}
    for param in command.params:
        if isinstance(param, click.Argument):
            found[param.name.replace("_", "-")] = param
        elif isinstance(param, click.Option) and param.expose_value and not param.is_eager:
            long_names = [opt for opt in param.opts if opt.startswith("--")]
            if long_names:
                found[long_names[0][2:]] = param
    return found


def read(path: str, command: click.Command) -> tuple[dict[str, object], list[str]]:
    """The file's settings as {parameter name: value} and any warnings;
    raises ConfigFileError."""
    try:
        with open(path, "rb") as file:
            data = file.read()
            mode = os.fstat(file.fileno()).st_mode
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigFileError(f"Fatal error, can't open config file '{path}': {reason}") from None
    known = directives(command)
    values: dict[str, object] = {}
    live: dict[str, str] = {}
    names: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip(b" \t\r\n")
        if not line or line.startswith(b"#"):
            continue

        def fail(reason: str) -> ConfigFileError:
            shown = line.decode("utf-8", "replace")
            if shown.split(None, 1)[0].lower() == "requirepass":
                shown = "requirepass (redacted)"  # stderr may end up in a shared log
            return ConfigFileError(
                f"\n*** FATAL CONFIG FILE ERROR (kvserver {__version__}) ***\n"
                f"Reading the configuration file {path}, at line {number}\n"
                f">>> '{shown}'\n{reason}"
            )

        try:
            args = [arg.decode() for arg in split_args(line)]
        except CommandError:
            raise fail(UNBALANCED) from None
        except UnicodeDecodeError:
            raise fail("Not valid UTF-8") from None
        name = args[0].lower()
        if name in _SPACED_DIRECTIVES and len(args) > 2:
            args = [args[0], " ".join(args[1:])]
        param = known.get(name)
        if param is None and len(args) == 2:
            from kvserver.commands.configcmd import live_setting_error  # the one table of settings

            problem = live_setting_error(name, args[1])
            if problem is not None:
                raise fail(problem)
            live[name] = args[1]
            continue
        if param is None or len(args) < 2 or (len(args) > 2 and not getattr(param, "multiple", False)):
            raise fail(BAD_DIRECTIVE)
        try:
            values[param.name] = _convert(name, param, args[1:])
        except click.BadParameter as exc:
            raise fail(exc.message) from None
        names.add(name)
    warnings = []
    if "requirepass" in names and mode & stat.S_IROTH:
        warnings.append(f"{path} holds requirepass and every user can read it: chmod o-r {path}")
    if live:
        values[LIVE_SETTINGS] = tuple(live.items())
    return values, warnings


def _convert(name: str, param: click.Parameter, args: list[str]) -> object:
    if isinstance(param, click.Option) and param.is_flag:
        if args[0].lower() not in ("yes", "no"):
            raise click.BadParameter("argument must be 'yes' or 'no'")
        return args[0].lower() == "yes"
    if name in _MEMORY_DIRECTIVES:
        value = parse_memory(args[0])
        if value is None:
            raise click.BadParameter("argument must be a memory value")
        args = [str(value)]
    converted = [param.type.convert(arg, param, None) for arg in args]
    return converted if getattr(param, "multiple", False) else converted[0]


def load(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
    """The ``--config`` option's callback (an eager option, so it runs
    before the others are read): the file's settings become their defaults."""
    if path is None or ctx.resilient_parsing:
        return path
    try:
        values, warnings = read(path, ctx.command)
    except ConfigFileError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(1)
    ctx.meta[LIVE_SETTINGS] = values.pop(LIVE_SETTINGS, ())
    ctx.default_map = {**(ctx.default_map or {}), **values}
    ctx.meta[WARNINGS] = warnings
    return path
