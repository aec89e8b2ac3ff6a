"""The `kamlog` command: thin over the library, it parses options, opens streams, reports errors."""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any, NoReturn

import click

from . import __version__
from .errors import KamlogError, NoLogFound, SourceError, UsageError
from .filters import EventFilter
from .levels import level_names, parse_level
from .parsing.options import ParseOptions


def _fail(error: KamlogError) -> NoReturn:
    click.echo(f"Error: {error}", err=True)
    sys.exit(error.exit_code)


def _note(text: str) -> None:
    click.echo(f"kamlog: {text}", err=True)


def _reports_errors(f: Any) -> Any:
    """A command's failures as the user should see them: a KamlogError is one `Error:` line and
    its exit code, Ctrl-C (or SIGTERM) exits 130, a reader that went away (`| head`) ends quietly."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except KamlogError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:
            _quiet_broken_pipe()

    return command


class _Level(click.ParamType[int]):
    name = "LEVEL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_level(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class _Count(click.ParamType["int | None"]):
    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "all":
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'all'", param, ctx)
        if number < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return number


def parse_options(f: Any) -> Any:
    """The options every command that reads logs shares, handed to it as one ParseOptions."""

    @functools.wraps(f)
    def command(
        *args: Any,
        grammar: str | None,
        programs: tuple[str, ...],
        year: int | None,
        tz: str | None,
        prefix_pattern: str | None,
        **kwargs: Any,
    ) -> Any:
        options = ParseOptions(grammar=grammar, programs=programs, year=year, tz=tz, prefix_pattern=prefix_pattern)
        return f(*args, options=options, **kwargs)

    decorators = [
        click.option("--grammar", metavar="NAME", help="Log format to use instead of detecting it (see `kamlog grammars`)."),
        click.option("--program", "programs", metavar="NAME", multiple=True, help="Syslog tag of Kamailio (default: any tag containing 'kamailio'); repeatable."),
        click.option("--year", type=int, help="Year of RFC 3164 timestamps, which have none (default: the file's modification year)."),
        click.option("--tz", metavar="ZONE", help="Zone of timestamps that have none, e.g. UTC, Europe/Berlin, +01:00 (default: this machine's)."),
        click.option("--prefix-pattern", metavar="REGEX", help="Regex with named groups call_id, cseq_num, cseq_method, msg_type for your own log_prefix."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="kamlog")
def cli() -> None:
    """kamlog: follow, parse and correlate Kamailio logs with the SIP packets they are about."""


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--level", "-l", type=_Level(), help=f"Show this level and the more severe ones: {level_names()}.")
@click.option("--call-id", "-c", "call_ids", multiple=True, metavar="ID", help="Only records of this Call-ID; repeatable.")
@click.option("--module", "-m", "modules", multiple=True, metavar="M", help="Only records of this module (core, script, tm, ...); repeatable.")
@click.option("--grep", "-g", metavar="REGEX", help="Only records whose prefix or message matches.")
@click.option("-n", "--lines", "last", type=_Count(), default="10", show_default=True, help="Start with the last N matching records of each file, or 'all'.")
@click.option("--follow/--no-follow", "-f/-F", default=True, show_default=True, help="Keep reading as the log grows, across rotations.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text: readable lines; json: one ECS object per line.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True, help="Colour levels like `kamailio -e`.")
@click.option("--journal", is_flag=True, help="Read the systemd journal (journalctl) instead of files.")
@click.option("--journal-dir", metavar="DIR", help="Read the journal files in DIR (journalctl -D), e.g. copied from another host.")
@parse_options
@_reports_errors
def tail(
    paths: tuple[str, ...],
    level: int | None,
    call_ids: tuple[str, ...],
    modules: tuple[str, ...],
    grep: str | None,
    last: int | None,
    follow: bool,
    fmt: str,
    color: str,
    journal: bool,
    journal_dir: str | None,
    options: ParseOptions,
) -> None:
    """Show Kamailio's log, filtered, and follow it like `tail -F`.

    With no PATH, follows the first of /var/log/kamailio.log, /var/log/kamailio/*.log,
    /var/log/syslog, /var/log/messages, then the systemd journal.
    """
    from .sources.journal import journal_tail
    from .pipeline import tail as run_tail

    keep = EventFilter.build(level, call_ids, modules, grep)
    sink, flush = _sink(fmt, color)
    if journal or journal_dir:
        if paths:
            raise UsageError("give either PATHs or --journal/--journal-dir, not both")
        if journal_dir is not None and not os.path.isdir(journal_dir):
            raise SourceError(f"{journal_dir} is not a directory")
        extra = ["--directory", journal_dir] if journal_dir else []
        _stop_on_sigterm()
        journal_tail(options, keep, sink, last=last, follow=follow, on_notice=_note, flush=flush, extra=extra)
        return
    if not paths:
        from .discover import find_log

        found = find_log()
        if found is None:
            raise NoLogFound(
                "no Kamailio log found in /var/log/kamailio.log, /var/log/kamailio/*.log, "
                "/var/log/syslog, /var/log/messages nor the journal; give its path"
            )
        _note(f"following {found.description}")
        if not found.paths:
            journal_tail(options, keep, sink, last=last, follow=follow, on_notice=_note, flush=flush)
            return
        paths = found.paths
    for path in paths:
        if any(ch in path for ch in "*?["):
            continue  # a glob may match nothing yet
        if os.path.isdir(path):
            raise SourceError(f"{path} is a directory; name the log files in it, or a glob like '{path.rstrip('/')}/*.log'")
        if not follow and not os.path.exists(path):
            raise SourceError(f"{path} does not exist")
    _stop_on_sigterm()
    result = run_tail(paths, options, keep, sink, last=last, follow=follow, on_notice=_note, flush=flush)
    _report(result.stats)


def _sink(fmt: str, color: str) -> tuple[Any, Any]:
    if fmt == "json":
        from .sinks.jsonl import JsonLinesSink

        json_sink = JsonLinesSink(sys.stdout.buffer)
        return json_sink, json_sink.flush
    from .sinks.console import ConsoleSink

    use_color = color == "always" or (color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    console = ConsoleSink(sys.stdout, color=use_color)
    return console, console.flush


def _report(stats: dict[str, Any]) -> None:
    for path, s in stats.items():
        if s.unparsed:
            _note(
                f"{path}: {s.unparsed} of {s.lines} lines matched no pattern of the grammar; "
                "they are shown as they are (with error.message in --format json)"
            )


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _quiet_broken_pipe() -> NoReturn:
    # The reader went away (`| head`): exit quietly, without Python's flush error at shutdown.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False), metavar="[FILE]...")
@parse_options
@_reports_errors
def grammars(files: tuple[str, ...], options: ParseOptions) -> None:
    """List the log formats kamlog reads; with FILEs, rank them on each file's first lines."""
    from .parsing.detect import rank, sample_lines

    known = options.grammars()
    if not files:
        width = max(len(g.name) for g in known)
        for g in known:
            click.echo(f"{g.name:<{width}}  {g.description}")
        return
    for path in files:
        try:
            with open(path, "rb") as fh:
                sample = sample_lines(fh.read(64 * 1024))
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from None
        verdicts = rank(sample, known, options.program_filter())
        click.echo(f"{path}:")
        for v in verdicts:
            click.echo(f"  {v.grammar.name:<26} {v.records:>6} records in {v.lines} lines")


def capture_options(f: Any) -> Any:
    """`--pcap FILE` (repeatable) and captures given as arguments, merged into `captures`."""

    @functools.wraps(f)
    def command(*args: Any, pcaps: tuple[str, ...], more: tuple[str, ...], **kwargs: Any) -> Any:
        return f(*args, captures=[*pcaps, *more], **kwargs)

    command = click.option("--pcap", "pcaps", multiple=True, metavar="FILE",
                           help="A pcap or pcapng capture (also .gz, a glob or a directory of tcpdump's rotated files); repeatable.")(command)
    return click.argument("more", nargs=-1, metavar="[FILE]...")(command)


@cli.command()
@capture_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text: a table; json: one object per dialog per line.")
@click.option("--method", "methods", multiple=True, metavar="METHOD", help="Only dialogs started by this method (INVITE, REGISTER, ...); repeatable.")
@click.option("--from", "from_", metavar="TEXT", help="Only dialogs whose From URI contains TEXT.")
@click.option("--to", metavar="TEXT", help="Only dialogs whose To URI contains TEXT.")
@click.option("--call-id", "-c", "call_ids", multiple=True, metavar="ID", help="Only this Call-ID (and its linked legs); repeatable.")
@click.option("--hide-options", is_flag=True, help="Leave out OPTIONS dialogs (keepalives).")
@_reports_errors
def calls(captures: list[str], fmt: str, methods: tuple[str, ...], from_: str | None, to: str | None,
          call_ids: tuple[str, ...], hide_options: bool) -> None:
    """List the SIP dialogs of captures: who called whom, when, how it ended."""
    from .calls import CallFilter, calls_table
    from .dialogs import Dialogs, dialog_document
    from .sources.pcap import CaptureReader

    reader = CaptureReader(captures)
    dialogs = Dialogs().extend(reader.messages())
    keep = CallFilter.build(methods, from_, to, call_ids, hide_options)
    groups = list(keep.groups(dialogs.linked()))
    if fmt == "json":
        import orjson

        out = sys.stdout.buffer
        for group in groups:
            for dialog in group:
                out.write(orjson.dumps(dialog_document(dialog)) + b"\n")
        out.flush()
    else:
        for line in calls_table(groups):
            click.echo(line)
    for note in reader.notes():
        _note(note)


@cli.command()
@capture_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text: one line per message; json: one object per message with Packetbeat's sip.* and ECS names.")
@click.option("--call-id", "-c", "call_ids", multiple=True, metavar="ID", help="Only messages of this Call-ID; repeatable.")
@click.option("--hep-listen", metavar="[HOST:]PORT", help="Receive HEP (Kamailio's siptrace) on this UDP port (host 127.0.0.1 unless given) and print what arrives until stopped.")
@_reports_errors
def messages(captures: list[str], fmt: str, call_ids: tuple[str, ...], hep_listen: str | None) -> None:
    """List the SIP messages of captures, in capture order, or as siptrace sends them over HEP."""
    from .calls import RecordPrinter
    from .sources.pcap import CaptureReader

    if hep_listen is not None:
        if captures:
            raise UsageError("give either captures or --hep-listen, not both")
        _stop_on_sigterm()
        _listen_hep(hep_listen, RecordPrinter(fmt, call_ids))
        return
    reader = CaptureReader(captures)
    printer = RecordPrinter(fmt, call_ids)
    out = sys.stdout.buffer
    for record in reader.records():
        line = printer(record)
        if line is not None:
            out.write(line + b"\n")
    out.flush()
    for note in reader.notes():
        _note(note)


def _listen_hep(where: str, printer: Any) -> None:
    """Print the SIP messages and log records HEP brings, as they come."""
    from .capture.hep import HepLog
    from .sip import parse_sip
    from .sources.hep import HepListener

    host, _, port_text = where.rpartition(":")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--hep-listen {where!r}: give a UDP port, or HOST:PORT")
    with HepListener(int(port_text), host.strip("[]") or "127.0.0.1") as listener:
        _note(f"listening for HEP on udp {listener.host}:{listener.port}")
        out = sys.stdout.buffer
        try:
            while True:
                for record in listener.receive(1.0):
                    parsed = record if isinstance(record, HepLog) else parse_sip(record)
                    line = printer(parsed) if parsed is not None else None
                    if line is not None:
                        out.write(line + b"\n")
                out.flush()
        finally:
            c = listener.counters
            _note(f"received {c.datagrams} HEP datagrams: {c.sip} SIP, {c.logs} log records, "
                  f"{c.other_types} of other types, {c.bad} not HEP or damaged"
                  + (f" (last: {listener.last_error})" if listener.last_error else ""))


@cli.command()
@capture_options
@click.option("--call-id", "-c", "call_ids", multiple=True, required=True, metavar="ID", help="The call to export; repeatable.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The pcap to write.")
@_reports_errors
def export(captures: list[str], call_ids: tuple[str, ...], output: str) -> None:
    """Write the packets of chosen calls as a pcap Wireshark opens (every IP fragment and TCP
    segment that carried them)."""
    from .sources.pcap import CaptureReader

    reader = CaptureReader(captures)
    written, messages = reader.export(set(call_ids), output)
    click.echo(f"wrote {written} packets ({messages} SIP messages) of {', '.join(call_ids)} to {output}")
    for note in reader.notes():
        _note(note)


@cli.command()
@click.option("--pcap", "pcaps", multiple=True, metavar="FILE", help="A capture (pcap, pcapng, also compressed, a glob or a directory of rotated files); repeatable.")
@click.option("--log", "logs", multiple=True, metavar="FILE", help="A Kamailio log (any format kamlog reads, also .gz; a glob or a rotated set like 'kamailio.log*'); repeatable.")
@click.argument("more", nargs=-1, metavar="[FILE]...")
@click.option("--call-id", "-c", "call_ids", multiple=True, metavar="ID", help="Only the call with this Call-ID (and its linked legs); repeatable.")
@click.option("--level", "-l", type=_Level(), help=f"Only log lines of this level and the more severe ones: {level_names()}.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True, help="text: a ladder per call; json: one object per event; html: a report to open in a browser (needs -o).")
@click.option("-o", "--output", metavar="FILE", help="Write here instead of to stdout.")
@click.option("--unattributed", "show_unattributed", is_flag=True, help="Text: list the log lines placed on no call (else only counted).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True, help="Colour levels like `kamailio -e` (text).")
@parse_options
@_reports_errors
def correlate(pcaps: tuple[str, ...], logs: tuple[str, ...], more: tuple[str, ...], call_ids: tuple[str, ...],
              level: int | None, fmt: str, output: str | None, show_unattributed: bool, color: str,
              options: ParseOptions) -> None:
    """Join Kamailio's log with the SIP captures into one timeline per call.

    Log lines are put on their call by the Call-ID they carry, or else by the Kamailio process
    that wrote them while it handled one of the call's messages; the others stay unattributed.
    FILEs given without --pcap/--log are told apart by their content.
    """
    from .correlate.inputs import classify
    from .correlate.run import correlate as run_correlate, open_output

    inputs = classify(pcaps, logs, more)
    if fmt == "html" and output in (None, "-"):
        raise UsageError("--format html writes a file: name it with -o report.html")
    stream = open_output(output)
    writer: Any
    if fmt == "json":
        from .sinks.timeline import JsonWriter

        writer = JsonWriter(stream, level)
    elif fmt == "html":
        from .sinks.html import HtmlWriter

        writer = HtmlWriter(stream, level)
    else:
        from .sinks.ladder import TextWriter

        use_color = color == "always" or (color == "auto" and output in (None, "-") and sys.stdout.isatty()
                                           and "NO_COLOR" not in os.environ)
        writer = TextWriter(stream, use_color, level, show_unattributed)
    try:
        summary = run_correlate(inputs, options, writer, call_ids=call_ids, on_notice=_note,
                                progress=sys.stderr.isatty())
    finally:
        if stream is not sys.stdout.buffer:
            stream.close()
    for note in summary.notes:
        _note(note)
    if output not in (None, "-"):
        _note(f"wrote {summary.shown} calls to {output}")


from . import cli_store  # noqa: E402,F401  (registers index, search, show, es: they need the helpers above)
from . import cli_rsyslog  # noqa: E402,F401  (registers rsyslog)
from . import cli_collect  # noqa: E402,F401  (registers collect)


def main() -> None:
    cli(prog_name="kamlog")


if __name__ == "__main__":
    main()
