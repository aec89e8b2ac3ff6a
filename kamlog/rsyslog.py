"""The files that make rsyslog write Kamailio's log where kamlog reads it: an rsyslog drop-in, its
logrotate file and the kamailio.cfg lines that go with them.

Rendering is pure (no I/O: `kamlog rsyslog` writes the files) and deterministic, so the generated
default can be kept in deploy/rsyslog/ and compared with what the command writes. Every value
given by the user ends up inside rsyslog's or logrotate's syntax, so each is checked against a
short list of characters that mean nothing there: a quote, a brace or a line break in a path
would otherwise change the configuration instead of naming a file.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from typing import Literal

from .errors import UsageError

#: rsyslog reads /etc/rsyslog.d/*.conf in name order; Ubuntu's rules that fill /var/log/syslog are
#: in 50-default.conf (Debian's in rsyslog.conf, after the include), so a lower number lets the
#: drop-in's `stop` keep Kamailio's messages out of them.
DROP_IN_NUMBER = 30
FACILITIES = tuple(f"local{n}" for n in range(8))
#: What Debian's own /etc/logrotate.d/rsyslog runs: HUP rsyslog (through systemd) so that it
#: closes the rotated file and opens the new one.
DEFAULT_POSTROTATE = "/usr/lib/rsyslog/rsyslog-rotate"
DEFAULT_FILE = "/var/log/kamailio.log"
DEFAULT_PROGRAM = "kamailio"
#: The log_prefix kamlog's grammars take the Call-ID and CSeq from (grammars/_base.toml).
LOG_PREFIX = "{$mt $hdr(CSeq) $ci} "
PRECISE_TEMPLATE = "RSYSLOG_FileFormat"
TRADITIONAL_TEMPLATE = "RSYSLOG_TraditionalFileFormat"
FORWARD_TEMPLATE = "RSYSLOG_SyslogProtocol23Format"
#: Messages the forwarding action holds while kamlog's listener is away, before it drops them.
FORWARD_QUEUE_SIZE = 100000
KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"

_PATH_CHARS = re.compile(r"[A-Za-z0-9._+@/-]")
_PROGRAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PROGRAM_CHARS = re.compile(r"[A-Za-z0-9._-]")
_HOST_CHARS = re.compile(r"[A-Za-z0-9.-]")
#: Why a character cannot be in a value, for the characters someone might try.
_WHY_NOT = {
    '"': "a quote would end rsyslog's string",
    "'": "a quote would start a quoted name in logrotate",
    "\\": "a backslash is an escape in rsyslog's strings",
    "{": "a brace opens a block in rsyslog and logrotate",
    "}": "a brace closes a block in rsyslog and logrotate",
    " ": "a space separates file names in logrotate",
    "\t": "a tab separates file names in logrotate",
    "#": "# starts a comment in rsyslog and logrotate",
    "*": "logrotate would take it as a glob",
    "?": "logrotate would take it as a glob",
    "[": "logrotate would take it as a glob",
    "]": "logrotate would take it as a glob",
}
#: ... and in a program name, which rsyslog's $programname must equal.
_WHY_NOT_PROGRAM = {
    **_WHY_NOT,
    " ": "a space ends the syslog tag",
    "\t": "a tab ends the syslog tag",
    "[": "rsyslog ends a program name there",
    ":": "rsyslog ends a program name there",
    "/": "rsyslog ends a program name there",
}


def _refuse(option: str, value: str, bad: str, advice: str, why_not: dict[str, str] = _WHY_NOT) -> UsageError:
    if bad in why_not:
        why = why_not[bad]
    elif bad in "\n\r":
        why = "a line break would start a new line of the configuration"
    elif not bad.isprintable():
        why = f"the control character {bad!r} has no place in a configuration"
    else:
        why = f"{bad!r} is not allowed"
    return UsageError(f"{option} {value!r}: {why}; {advice}")


def _first_bad(value: str, allowed: re.Pattern[str]) -> str | None:
    return next((ch for ch in value if not allowed.fullmatch(ch)), None)


def check_file(path: str) -> str:
    """The log file's path, if it can stand as it is in rsyslog's `file="..."` and logrotate's
    list of paths (no quoting needed, no glob, no comment)."""
    bad = _first_bad(path, _PATH_CHARS)
    if bad is not None:
        raise _refuse("--file", path, bad, "use only letters, digits and . _ - + @ / in the path")
    if not path.startswith("/"):
        raise UsageError(f"--file {path!r}: give an absolute path, e.g. {DEFAULT_FILE}")
    if path.endswith("/") or path.rsplit("/", 1)[1] in (".", ".."):
        raise UsageError(f"--file {path!r}: give the path of a file, not of a directory")
    if "/../" in path or "/./" in path or "//" in path:
        raise UsageError(f"--file {path!r}: give the path without . or .. parts or double slashes")
    return path


def check_program(program: str) -> str:
    """Kamailio's log_name, if rsyslog's `$programname` will be exactly it: rsyslog ends a program
    name at `[`, `:` and `/`, and the name is matched inside a quoted string."""
    bad = _first_bad(program, _PROGRAM_CHARS)
    if bad is not None:
        raise _refuse("--program", program, bad, "use only letters, digits and . _ - in the name", _WHY_NOT_PROGRAM)
    if not _PROGRAM.fullmatch(program):
        raise UsageError(f"--program {program!r}: give a name that starts with a letter or a digit, e.g. kamailio")
    return program


def check_facility(facility: str) -> str:
    """local0 to local7, also written as Kamailio does (LOG_LOCAL0); the drop-in takes every
    message of this facility, so one that other daemons use (daemon, user) is refused."""
    name = facility.lower().removeprefix("log_")
    if name not in FACILITIES:
        raise UsageError(
            f"--facility {facility!r}: give one of local0 to local7 (Kamailio's LOG_LOCAL0 to LOG_LOCAL7), "
            "one that no other program on the host logs with: every message of it goes to the file"
        )
    return name


def check_postrotate(command: str) -> str:
    """A one-line shell command for logrotate's postrotate script."""
    bad = next((ch for ch in command if not ch.isprintable()), None)
    if bad is not None:
        raise _refuse("--postrotate", command, bad, "give one line of shell")
    if not command.strip():
        raise UsageError(f"--postrotate {command!r}: give the command that makes rsyslog reopen its files, "
                         f"e.g. {DEFAULT_POSTROTATE}")
    if command.lstrip().startswith("endscript"):
        raise UsageError(f"--postrotate {command!r}: endscript would end logrotate's script")
    return command


@dataclass(frozen=True)
class Forward:
    """Where rsyslog also sends Kamailio's messages: kamlog's syslog listener."""

    protocol: Literal["udp", "tcp"]
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Forward:
        """`udp://HOST:PORT` or `tcp://HOST:PORT`; HOST a name, an IPv4 or a bracketed IPv6 address."""
        usage = f"--forward {url!r}: give udp://HOST:PORT or tcp://HOST:PORT"
        bad = next((ch for ch in url if not ch.isprintable() or ch in '"\\{}# '), None)
        if bad is not None:
            raise _refuse("--forward", url, bad, "give udp://HOST:PORT or tcp://HOST:PORT")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("udp", "tcp"):
            raise UsageError(usage)
        rest = rest.removesuffix("/")
        if rest.startswith("["):
            host, bracket, port_text = rest[1:].partition("]")
            if not bracket or not port_text.startswith(":"):
                raise UsageError(usage)
            port_text = port_text[1:]
            if not re.fullmatch(r"[0-9a-fA-F.]*:[0-9a-fA-F:.]*", host):
                raise UsageError(f"--forward {url!r}: {host!r} is not an IPv6 address")
        else:
            host, colon, port_text = rest.rpartition(":")
            if not colon or not host:
                raise UsageError(usage)
            bad = _first_bad(host, _HOST_CHARS)
            if bad is not None:
                raise _refuse("--forward", url, bad, "use only letters, digits, . and - in the host name")
        if not re.fullmatch(r"[0-9]+", port_text):
            raise UsageError(usage)
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise UsageError(f"--forward {url!r}: the port must be 1 to 65535")
        return cls("udp" if scheme == "udp" else "tcp", host.lower(), port)


@dataclass(frozen=True)
class GeneratedFile:
    """One file `kamlog rsyslog` writes: its name under -o DIR, where it goes on the host, its text."""

    name: str
    destination: str
    text: str


@dataclass(frozen=True)
class RsyslogSetup:
    """What `kamlog rsyslog` was asked for, checked: build it with :meth:`build`."""

    facility: str = "local0"
    file: str = DEFAULT_FILE
    program: str = DEFAULT_PROGRAM
    precise: bool = True
    forward: Forward | None = None
    postrotate: str = DEFAULT_POSTROTATE

    @classmethod
    def build(cls, facility: str = "local0", file: str = DEFAULT_FILE, program: str = DEFAULT_PROGRAM,
              precise: bool = True, forward: str | None = None, postrotate: str = DEFAULT_POSTROTATE) -> RsyslogSetup:
        """Check every value as the command line gave it; raise UsageError naming the first bad one."""
        return cls(
            facility=check_facility(facility),
            file=check_file(file),
            program=check_program(program),
            precise=precise,
            forward=Forward.parse(forward) if forward is not None else None,
            postrotate=check_postrotate(postrotate),
        )

    @property
    def command_line(self) -> str:
        """The command that writes these files again, with every option spelt out so that it
        gives the same files even if a default changes."""
        args = ["kamlog", "rsyslog", "--facility", self.facility, "--file", self.file, "--program", self.program,
                "--precise" if self.precise else "--traditional"]
        if self.forward is not None:
            args += ["--forward", self.forward.url]
        args += ["--postrotate", self.postrotate]
        return shlex.join(args)

    @property
    def drop_in_name(self) -> str:
        return f"{DROP_IN_NUMBER}-{self.program}.conf"

    @property
    def template(self) -> str:
        return PRECISE_TEMPLATE if self.precise else TRADITIONAL_TEMPLATE

    def files(self) -> list[GeneratedFile]:
        """The drop-in, the logrotate file and the kamailio.cfg lines, in the order to install them."""
        return [
            GeneratedFile(self.drop_in_name, f"/etc/rsyslog.d/{self.drop_in_name}", self.drop_in()),
            GeneratedFile(f"{self.program}.logrotate", f"/etc/logrotate.d/{self.program}", self.logrotate()),
            GeneratedFile(f"{self.program}.cfg.snippet", KAMAILIO_CFG, self.kamailio_cfg()),
        ]

    def _header(self, *about: str) -> list[str]:
        lines = [
            "# Generated by `kamlog rsyslog`; to change it, run it again with other arguments:",
            f"#   {self.command_line}",
        ]
        for paragraph in about:
            lines += ["#", *_comment(paragraph, "")]
        return lines

    def drop_in(self) -> str:
        """RainerScript that sends Kamailio's messages to the file (and the listener) only.

        Kamailio's messages are known three ways, any of which is enough: the facility (set by
        log_facility), the program name (log_name), and, for a Kamailio started without log_name
        by its path (systemd's `/usr/sbin/kamailio`), the tag: rsyslog's `$programname` ends at
        the first `/` and is then empty, so `/kamailio[` is looked for in `$syslogtag`.
        """
        own = self.program == DEFAULT_PROGRAM
        match = [f'$syslogfacility-text == "{self.facility}"', f'$programname == "{self.program}"']
        if not own:
            match.append(f'$programname == "{DEFAULT_PROGRAM}"')
        match.append(f'$syslogtag contains "/{DEFAULT_PROGRAM}["')
        programs = (f'of program {self.program} (log_name="{self.program}", also the tag of what Kamailio logs '
                    "before it reads log_name)" if own else
                    f'of program {self.program} (log_name="{self.program}") or {DEFAULT_PROGRAM} (the tag of what '
                    "Kamailio logs before it reads log_name)")
        fmt = ("RFC 3339 timestamps with microseconds, as kamlog's kamailio-syslog-rfc3339 grammar reads them."
               if self.precise else
               "The traditional format (no year, no zone, whole seconds), as kamlog's kamailio-syslog grammar reads it.")
        lines = self._header(
            f"rsyslog drop-in: Kamailio's messages go to {self.file} and to no later rule, so not to "
            f"/var/log/syslog. Install it as /etc/rsyslog.d/{self.drop_in_name} (read before the rules that "
            "fill /var/log/syslog), check with `rsyslogd -N1`, then `systemctl restart rsyslog`.",
            f"Kamailio's messages are those of facility {self.facility} "
            f"(log_facility=LOG_{self.facility.upper()}), those {programs}, and those tagged with its path, "
            "/usr/sbin/kamailio[PID], when it runs without log_name: rsyslog's $programname ends at the first "
            '"/" and is then empty.',
        )
        lines += [
            "",
            "if " + "\n   or ".join(match) + " then {",
            *_comment(fmt, "    "),
            f'    action(type="omfile" file="{self.file}" template="{self.template}")',
        ]
        if self.forward is not None:
            f = self.forward
            framing = ' TCP_Framing="octet-counted"' if f.protocol == "tcp" else ""
            form = "RFC 5424 form, octet-counted (RFC 6587)" if f.protocol == "tcp" else "RFC 5424 form"
            lines += [
                *_comment(f"And to kamlog's syslog listener, in {form}. The action's own queue keeps rsyslog "
                          "going while the listener is down: messages wait there (once it holds "
                          f"{FORWARD_QUEUE_SIZE}, new ones are dropped for the listener) instead of holding "
                          "up the file.", "    "),
                f'    action(type="omfwd" target="{f.host}" port="{f.port}" protocol="{f.protocol}"{framing}',
                f'           template="{FORWARD_TEMPLATE}"',
                f'           queue.type="LinkedList" queue.size="{FORWARD_QUEUE_SIZE}" queue.timeoutEnqueue="0"',
                '           action.resumeRetryCount="-1" action.resumeInterval="10")',
            ]
        lines += ["    stop", "}"]
        return "\n".join(lines) + "\n"

    def logrotate(self) -> str:
        """logrotate's rules for the file: rename and create (rsyslog reopens on HUP; copytruncate
        would lose what arrives between its copy and its truncation)."""
        lines = self._header(
            f"logrotate: rotates {self.file} daily and keeps 14, compressed. Install it as "
            f"/etc/logrotate.d/{self.program}, check with `logrotate -d /etc/logrotate.d/{self.program}`. The "
            "file is renamed, a new one created like it, then rsyslog told (HUP) to close the one and open the other.",
        )
        lines += [
            "",
            self.file,
            "{",
            "\tdaily",
            "\trotate 14",
            "\tmissingok",
            "\tnotifempty",
            "\tcompress",
            "\tdelaycompress",
            "\tcreate",
            "\tsharedscripts",
            "\tpostrotate",
            f"\t\t{self.postrotate}",
            "\tendscript",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def kamailio_cfg(self) -> str:
        """The global parameters that make Kamailio log what the drop-in takes and kamlog reads."""
        lines = self._header(
            f"kamailio.cfg: put these lines among the global parameters of {KAMAILIO_CFG}, then restart "
            "Kamailio. The facility and name are what the rsyslog drop-in matches; the prefix carries the "
            "message type, CSeq and Call-ID into every line logged while a SIP message is handled.",
        )
        lines += [
            "",
            f"log_facility=LOG_{self.facility.upper()}",
            f'log_name="{self.program}"',
            f'log_prefix="{LOG_PREFIX}"',
        ]
        return "\n".join(lines) + "\n"

    def next_steps(self, written: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """What to do with the files, as (command, why) pairs (a step without command is done by
        hand): install them, check, restart, read. ``written`` maps each file's name to where -o
        wrote it; without it the files were printed."""
        drop_in, rotate, cfg = self.files()
        steps: list[tuple[str, str]] = []
        if written is not None:
            steps += [
                (f"install -m 0644 {shlex.quote(written[drop_in.name])} {drop_in.destination}", ""),
                (f"install -m 0644 {shlex.quote(written[rotate.name])} {rotate.destination}", ""),
            ]
        lines = f"the lines of {shlex.quote(written[cfg.name])}" if written is not None else "the kamailio.cfg lines above"
        read = ["kamlog", "tail", self.file] if "kamailio" in self.program else \
            ["kamlog", "tail", "--program", self.program, self.file]
        steps += [
            ("rsyslogd -N1", "checks rsyslog's whole configuration"),
            (f"logrotate -d {rotate.destination}", "a dry run of the rotation"),
            ("systemctl restart rsyslog", ""),
            ("", f"add {lines} to the global parameters of {cfg.destination}, then"),
            ("systemctl restart kamailio", ""),
            (shlex.join(read), ""),
        ]
        return steps


def steps_text(steps: list[tuple[str, str]], indent: str) -> list[str]:
    """The steps one per line, the reasons of commands aligned after a `#`."""
    width = max(len(command) for command, why in steps if command and why)
    return [f"{indent}{command:<{width}}  # {why}" if command and why else f"{indent}{command or why}"
            for command, why in steps]


def _comment(text: str, indent: str) -> list[str]:
    """``text`` as comment lines of at most 100 characters (a long path stays whole)."""
    return textwrap.wrap(text, 100, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ",
                         break_long_words=False, break_on_hyphens=False)
