"""The `kamlog rsyslog` command: writes the rsyslog drop-in, logrotate file and kamailio.cfg lines
that make Kamailio's log a dedicated file kamlog reads, and says where each goes."""

from __future__ import annotations

import os

import click

from .cli import _reports_errors, cli
from .errors import KamlogError
from .rsyslog import DEFAULT_FILE, DEFAULT_POSTROTATE, DEFAULT_PROGRAM, RsyslogSetup, steps_text


@cli.command()
@click.option("--facility", default="local0", show_default=True, metavar="local0..local7", help="Kamailio's log_facility; every message of it goes to the file.")
@click.option("--file", "file", default=DEFAULT_FILE, show_default=True, metavar="PATH", help="The dedicated log file rsyslog writes.")
@click.option("--program", default=DEFAULT_PROGRAM, show_default=True, metavar="NAME", help="Kamailio's log_name, its syslog tag.")
@click.option("--precise/--traditional", default=True, help="RFC 3339 timestamps with microseconds (the default), or the traditional syslog format.")
@click.option("--forward", metavar="udp://HOST:PORT", help="Also send the messages to kamlog's syslog listener (udp:// or tcp://), in RFC 5424 form.")
@click.option("--postrotate", default=DEFAULT_POSTROTATE, show_default=True, metavar="CMD", help="What logrotate runs to make rsyslog reopen the file.")
@click.option("-o", "--output", metavar="DIR", help="Write the files into DIR instead of printing them.")
@_reports_errors
def rsyslog(facility: str, file: str, program: str, precise: bool, forward: str | None, postrotate: str,
            output: str | None) -> None:
    """Write an rsyslog drop-in that puts Kamailio's messages in a file of their own (and not in
    /var/log/syslog), its logrotate file and the kamailio.cfg lines that go with them; say where
    each goes and what to restart. Without -o they are printed."""
    setup = RsyslogSetup.build(facility, file, program, precise, forward, postrotate)
    files = setup.files()
    if output is None:
        for generated in files:
            where = generated.destination
            if generated.name.endswith(".snippet"):
                where += " (among its global parameters)"
            click.echo(f"# ---- {where} ----\n{generated.text}")
        click.echo("# ---- then ----")
        click.echo("\n".join(steps_text(setup.next_steps(), "# ")))
        return
    written = {}
    try:
        os.makedirs(output, exist_ok=True)
        for generated in files:
            path = os.path.join(output, generated.name)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(generated.text)
            written[generated.name] = path
    except OSError as exc:
        raise KamlogError(f"cannot write into {output}: {exc.strerror}") from None
    for generated in files:
        click.echo(f"wrote {written[generated.name]} (for {generated.destination})")
    click.echo("then:")
    click.echo("\n".join(steps_text(setup.next_steps(written), "  ")))
