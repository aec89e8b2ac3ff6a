"""`kamlog collect`: the service (see kamlog.service)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli import _reports_errors, cli

if TYPE_CHECKING:
    from .service.config import ServiceConfig


@cli.command()
@click.option("--config", "config_path", metavar="FILE", required=True, envvar="KAMLOG_CONFIG",
              help="The service's TOML configuration (examples/kamlog.toml documents every key) [env KAMLOG_CONFIG].")
@click.option("--check", is_flag=True, help="Read and check the configuration, say what it would do, and exit.")
@_reports_errors
def collect(config_path: str, check: bool) -> None:
    """Run the service: tail logs, take rotated captures and HEP, correlate calls as they
    complete, and store them (embedded store and/or Elasticsearch) until SIGTERM.

    Nothing is lost and nothing is stored twice across restarts and kill -9: the registry
    of read offsets advances only once a sink holds the records. SIGHUP reloads the
    configuration. Health and counters: http://127.0.0.1:9622/health (see [service] status)."""
    from .service.config import load

    config = load(config_path)
    if check:
        for line in describe(config):
            click.echo(line)
        return
    from .service.run import serve

    raise SystemExit(serve(config))


def describe(config: ServiceConfig) -> list[str]:
    """What the service would do with this configuration, a line per part (--check)."""
    node = config.hostname or "this machine's name"
    lines = [f"{config.path}: the configuration is valid", f"host.hostname: {node}",
             f"state: {config.state_dir} (registry, capture state, spool)"]
    for source in config.logs:
        lines.append(f"logs: {', '.join(source.paths)} (grammar {source.options.grammar or 'detected'}, "
                     f"new files from the {source.start})")
    for capture in config.captures:
        lines.append(f"captures: {capture.pattern} (a file is taken once closed, or quiet for {capture.closed_after:g} s)")
    if config.journald is not None:
        where = config.journald.directory or "the system's journal"
        lines.append(f"journald: {where}, units {', '.join(config.journald.units) or '-'}")
    if config.syslog is not None:
        lines.append(f"syslog: {config.syslog.transport} {config.syslog.host}:{config.syslog.port}")
    if config.hep is not None:
        lines.append(f"HEP: udp {config.hep.host}:{config.hep.port}")
    if config.store is not None:
        lines.append(f"store: {config.store.path}")
    if config.elasticsearch is not None:
        lines.append(f"elasticsearch: {config.elasticsearch.url} namespace {config.elasticsearch.namespace}, "
                     f"spool up to {config.elasticsearch.spool_max_bytes} bytes")
    lines.append(f"calls close after {config.call_timeout:g} s without a new event")
    if config.status is not None:
        lines.append(f"status: http://{config.status[0]}:{config.status[1]}/health")
    return lines


