"""The service's configuration: one TOML file (see examples/kamlog.toml, which documents every key).

Parsed strictly: an unknown key or table, a value of the wrong type or out of range is a
ConfigError that names the file and the key, so that a typo never silently turns a source off.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import ConfigError
from ..parsing.options import ParseOptions

DEFAULT_STATE_DIR: Final = "/var/lib/kamlog"
DEFAULT_STATUS: Final = "127.0.0.1:9622"


@dataclass(frozen=True)
class LogSource:
    paths: tuple[str, ...]
    options: ParseOptions
    start: Literal["beginning", "end"] = "beginning"


@dataclass(frozen=True)
class CaptureSource:
    pattern: str  # a glob of the files tcpdump -G/-C writes
    closed_after: float = 60.0


@dataclass(frozen=True)
class HepSource:
    host: str
    port: int


@dataclass(frozen=True)
class JournalSource:
    options: ParseOptions  # programs: the SYSLOG_IDENTIFIERs (empty: kamailio and /usr/sbin/kamailio)
    units: tuple[str, ...] = ("kamailio.service",)  # whose stderr is Kamailio's log too
    directory: str | None = None  # journalctl --directory (default: the system's journal)


@dataclass(frozen=True)
class SyslogSource:
    transport: Literal["udp", "tcp"]
    host: str
    port: int
    options: ParseOptions


@dataclass(frozen=True)
class StoreSink:
    path: str


@dataclass(frozen=True)
class ElasticSink:
    url: str
    namespace: str = "default"
    ca_certs: str | None = None
    spool_max_bytes: int = 1 << 30
    dead_letter: str | None = None  # default: <state_dir>/dead-letter.ndjson


@dataclass(frozen=True)
class ServiceConfig:
    path: str  # the file it was read from (SIGHUP reads it again)
    state_dir: str = DEFAULT_STATE_DIR
    hostname: str = ""  # "": this machine's name (see `node`)
    call_timeout: float = 32.0
    status: tuple[str, int] | None = ("127.0.0.1", 9622)
    stats_interval: float = 60.0
    max_waiting: int = 200_000  # records read but not yet stored; beyond, reading pauses
    logs: tuple[LogSource, ...] = ()
    captures: tuple[CaptureSource, ...] = ()
    hep: HepSource | None = None
    journald: JournalSource | None = None
    syslog: SyslogSource | None = None
    store: StoreSink | None = None
    elasticsearch: ElasticSink | None = None

    @property
    def node(self) -> str:
        """host.hostname of this node's events."""
        return self.hostname or socket.gethostname()

    @property
    def registry_path(self) -> str:
        return os.path.join(self.state_dir, "registry.json")

    def captures_state_path(self, n: int) -> str:
        """What the n-th [[captures]] table has taken."""
        return os.path.join(self.state_dir, f"captures-{n}.json")

    @property
    def journal_state_path(self) -> str:
        return os.path.join(self.state_dir, "journal.json")

    @property
    def spool_dir(self) -> str:
        return os.path.join(self.state_dir, "spool")


def load(path: str) -> ServiceConfig:
    """Read and check the configuration file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, Any], path: str) -> ServiceConfig:
    top = _Table(data, path, "")
    service = top.table("service")
    state_dir = service.string("state_dir", DEFAULT_STATE_DIR)
    config = ServiceConfig(
        path=path,
        state_dir=state_dir,
        hostname=service.string("hostname", ""),
        call_timeout=service.number("call_timeout", 32.0, low=1.0),
        status=_address(service, "status", DEFAULT_STATUS),
        stats_interval=service.number("stats_interval", 60.0, low=0.0),
        max_waiting=int(service.number("max_waiting", 200_000, low=1000)),
        logs=tuple(_log_source(t) for t in top.tables("logs")),
        captures=tuple(_capture_source(t) for t in top.tables("captures")),
        hep=_hep(top.table("hep")),
        journald=_journald(top.table("journald")),
        syslog=_syslog(top.table("syslog")),
        store=_store(top.table("store"), state_dir),
        elasticsearch=_elastic(top.table("elasticsearch")),
    )
    if not (config.logs or config.captures or config.hep or config.journald or config.syslog):
        raise ConfigError(f"{path}: no source is configured: add a [[logs]], [[captures]], [journald], "
                          "[syslog] or [hep] table")
    if config.store is None and config.elasticsearch is None:
        raise ConfigError(f"{path}: no sink is configured: add a [store] or [elasticsearch] table")
    return config


def _log_source(t: _Table) -> LogSource:
    paths = t.strings("paths")
    if not paths:
        raise ConfigError(f"{t.where('paths')} must name at least one path or glob")
    start = t.string("start", "beginning")
    if start not in ("beginning", "end"):
        raise ConfigError(f"{t.where('start')} must be \"beginning\" or \"end\", not {start!r}")
    options = _parse_options(t, grammar=t.string("grammar", "") or None, programs=tuple(t.strings("programs")),
                             year=t.integer("year", None), tz=t.string("tz", "") or None,
                             prefix_pattern=t.string("prefix_pattern", "") or None)
    return LogSource(tuple(paths), options, start)  # type: ignore[arg-type]


def _capture_source(t: _Table) -> CaptureSource:
    source = CaptureSource(t.string("files"), t.number("closed_after", 60.0, low=0.1))
    return source


def _hep(t: _Table) -> HepSource | None:
    if t.empty:
        return None
    address = _address(t, "listen", None)
    if address is None:
        raise ConfigError(f"{t.where('listen')} is required: the HOST:PORT to receive HEP on")
    return HepSource(*address)


def _journald(t: _Table) -> JournalSource | None:
    if t.empty:
        return None
    options = ParseOptions(programs=tuple(t.strings("programs")))
    return JournalSource(options, tuple(t.strings("units") if "units" in t.data else ["kamailio.service"]),
                         t.string("directory", "") or None)


def _syslog(t: _Table) -> SyslogSource | None:
    if t.empty:
        return None
    text = t.string("listen")
    transport, sep, rest = text.partition("://")
    if not sep:
        transport, rest = "udp", text
    if transport not in ("udp", "tcp"):
        raise ConfigError(f"{t.where('listen')} must be udp://HOST:PORT or tcp://HOST:PORT, not {text!r}")
    host, port = _host_port(t, "listen", rest)
    options = _parse_options(t, grammar=t.string("grammar", "") or None, programs=tuple(t.strings("programs")))
    return SyslogSource(transport, host, port, options)  # type: ignore[arg-type]


def _parse_options(t: _Table, **values: Any) -> ParseOptions:
    options = ParseOptions(**values)
    try:
        options.validate()
    except Exception as exc:  # the parser's own sentence, placed in the file
        raise ConfigError(f"{t.where('')}: {exc}") from None
    return options


def _store(t: _Table, state_dir: str) -> StoreSink | None:
    if t.empty:
        return None
    sink = StoreSink(t.string("path", os.path.join(state_dir, "timeline.db")))
    return sink


def _elastic(t: _Table) -> ElasticSink | None:
    if t.empty:
        return None
    sink = ElasticSink(
        url=t.string("url"),
        namespace=t.string("namespace", "default"),
        ca_certs=t.string("ca_certs", "") or None,
        spool_max_bytes=_size(t, "spool_max", "1GiB"),
        dead_letter=t.string("dead_letter", "") or None,
    )
    return sink


def _address(t: _Table, key: str, default: str | None) -> tuple[str, int] | None:
    text = t.string(key, default if default is not None else "")
    return _host_port(t, key, text) if text else None


def _host_port(t: _Table, key: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{t.where(key)} must be HOST:PORT (e.g. {DEFAULT_STATUS}), not {text!r}")
    return host, int(port)


_UNITS: Final = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2,
                 "mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30}


def _size(t: _Table, key: str, default: str) -> int:
    value = t.raw(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("kmgib")
    unit = text[len(number):]
    try:
        size = int(float(number) * _UNITS[unit])
    except (ValueError, KeyError):
        size = 0
    if size <= 0:
        raise ConfigError(f"{t.where(key)} must be a size such as \"1GiB\" or \"500MB\", not {value!r}")
    return size


KEYS: Final = {
    "": ("service", "logs", "captures", "hep", "journald", "syslog", "store", "elasticsearch"),
    "service": ("state_dir", "hostname", "call_timeout", "status", "stats_interval", "max_waiting"),
    "logs": ("paths", "grammar", "programs", "year", "tz", "prefix_pattern", "start"),
    "captures": ("files", "closed_after"),
    "hep": ("listen",),
    "journald": ("programs", "units", "directory"),
    "syslog": ("listen", "grammar", "programs"),
    "store": ("path",),
    "elasticsearch": ("url", "namespace", "ca_certs", "spool_max", "dead_letter"),
}


class _Table:
    """One TOML table of KEYS's, read key by key with the types each key needs."""

    def __init__(self, data: Any, path: str, name: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        self.data = data
        self.path = path
        self.name = name
        # Unknown keys first, before any value is read: a misspelt key explains a missing one.
        unknown = sorted(set(data) - set(KEYS[name.partition("[")[0]]))
        if unknown:
            raise ConfigError(f"{self.where(unknown[0])} is not a known key"
                              + (f" (nor {', '.join(unknown[1:])})" if unknown[1:] else ""))

    @property
    def empty(self) -> bool:
        return not self.data

    def where(self, key: str) -> str:
        dotted = ".".join(p for p in (self.name, key) if p)
        return f"{self.path}: {dotted}" if dotted else self.path

    def raw(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def table(self, key: str) -> _Table:
        return _Table(self.raw(key, {}), self.path, key)

    def tables(self, key: str) -> list[_Table]:
        value = self.raw(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{self.where(key)} must be an array of tables ([[{key}]])")
        return [_Table(v, self.path, f"{key}[{n}]") for n, v in enumerate(value)]

    def string(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if value is None:
            raise ConfigError(f"{self.where(key)} is required")
        if not isinstance(value, str):
            raise ConfigError(f"{self.where(key)} must be a string, not {value!r}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.raw(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.where(key)} must be a string or a list of strings")
        return value

    def number(self, key: str, default: float, *, low: float) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigError(f"{self.where(key)} must be a number of seconds, at least {low:g}, not {value!r}")
        return float(value)

    def integer(self, key: str, default: int | None) -> int | None:
        value = self.raw(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{self.where(key)} must be an integer, not {value!r}")
        return value
