"""`redkeeper agent`: with a topology file, or standalone (Sentinels + a nutcracker.yml)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from redkeeper.agent import Agent, AgentSettings
from redkeeper.agent import logs as agent_logs
from redkeeper.cli.app import ArgvTailCommand, cli, config_option, load, restart_cmd_option
from redkeeper.errors import Problem, RedkeeperError, UsageError
from redkeeper.model import Address
from redkeeper.process import find_binary
from redkeeper.proxy.base import Target
from redkeeper.proxy.haproxy import RuntimeAPI
from redkeeper.proxy.haproxy.steady import SteadyTarget
from redkeeper.proxy.registry import nutcracker_target
from redkeeper.proxy.strategy import Strategy, choose_strategy
from redkeeper.proxy.twemproxy import load_pools
from redkeeper.proxy.twemproxy.restart import ManagedNutcracker
from redkeeper.proxy.twemproxy.targets import read_text
from redkeeper.render import Layout, haproxy_plan, nutcracker_argv

log = logging.getLogger("redkeeper.agent")


def _usage(field: str, message: str, fix: str) -> UsageError:
    return UsageError(str(Problem("redkeeper agent", field, message, fix)))


def _address(text: str, field: str) -> Address:
    try:
        return Address.parse(text)
    except ValueError as exc:
        raise _usage(field, str(exc), "use host:port") from None


@cli.command(cls=ArgvTailCommand)
@config_option
@click.option(
    "--sentinel", "sentinels", multiple=True, metavar="HOST:PORT",
    help="Standalone: a Sentinel to follow (repeat it for each; no topology file then).",
)  # fmt: skip
@click.option(
    "--nutcracker-config", type=click.Path(path_type=Path, dir_okay=False),
    help="The nutcracker.yml to keep pointed at the masters (with a topology: default "
    "STATE_DIR/nutcracker/nutcracker.yml of the local stack).",
)  # fmt: skip
@click.option("--managed", is_flag=True, help="Run nutcracker as the agent's child.")
@restart_cmd_option
@click.option(
    "--staging", type=click.Path(path_type=Path, dir_okay=False),
    help="Write each new nutcracker.yml here for `redkeeper apply-staged` (run as root) to "
    "install and restart, instead of restarting nutcracker itself.",
)  # fmt: skip
@click.option("--stats", default=None, help="Standalone --managed: nutcracker stats host:port.")
@click.option("--metrics", default=None, help="host:port for /metrics and /healthz; '' disables.")
@click.option("--password-env", default=None, help="Standalone: env var holding the password.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
    help="Where the managed nutcracker's record and log live (default: the topology's "
    "state_dir; standalone: the nutcracker.yml's directory).",
)  # fmt: skip
@click.option(
    "--debounce-ms", type=click.IntRange(0, 10000), default=None,
    help="Wait this long after a Sentinel event before acting, to gather a burst "
    "(default: agent.debounce_ms).",
)  # fmt: skip
@click.option(
    "--period-ms", type=click.IntRange(50, 600000), default=None,
    help="Ask the Sentinels this often even without events (default: agent.period_ms).",
)  # fmt: skip
@click.option(
    "--coalesce-ms", type=click.IntRange(0, 60000), default=None,
    help="Hold a ready change at most this long while another shard is mid-failover, so "
    "both cost one nutcracker restart (default: agent.coalesce_ms).",
)  # fmt: skip
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Log lines on stderr: dated text, or one JSON object a line.",
)  # fmt: skip
def agent(
    config: Path | None,
    sentinels: tuple[str, ...],
    nutcracker_config: Path | None,
    managed: bool,
    restart_cmd: tuple[str, ...] | None,
    staging: Path | None,
    stats: str | None,
    metrics: str | None,
    password_env: str | None,
    state_dir: Path | None,
    debounce_ms: int | None,
    period_ms: int | None,
    coalesce_ms: int | None,
    log_format: str,
) -> None:
    """Keep nutcracker pointed at Sentinel's current masters.

    Without -c or --sentinel it follows the embedded default topology's Sentinels
    (127.0.0.1:26379, 127.0.0.1:26380, 127.0.0.1:26381) and says so when it starts.

    \b
    With a topology:  redkeeper agent -c topology.yaml [--managed]
    Standalone:       redkeeper agent --sentinel H:P --sentinel H:P --sentinel H:P \\
                        --nutcracker-config /etc/nutcracker.yml \\
                        (--managed | --staging F | --restart-cmd systemctl restart nutcracker)
    """
    agent_logs.setup(log_format)
    reload: Callable[[], None] | None = None
    if sentinels:
        agent_obj = _standalone(
            sentinels,
            nutcracker_config,
            lambda: choose_strategy(
                None, managed=managed, restart_cmd=restart_cmd, staging=staging
            ),
            stats,
            metrics,
            password_env,
            state_dir,
        )
    else:
        agent_obj = _with_topology(
            config, nutcracker_config, managed, restart_cmd, staging, metrics, state_dir
        )
        reload = functools.partial(_reload_inventory, agent_obj, config)
    settings = agent_obj.settings
    agent_obj.settings = replace(
        settings,
        debounce=settings.debounce if debounce_ms is None else debounce_ms / 1000,
        period=settings.period if period_ms is None else period_ms / 1000,
        coalesce=settings.coalesce if coalesce_ms is None else coalesce_ms / 1000,
    )
    asyncio.run(_run(agent_obj, reload))


def _reload_inventory(agent_obj: Agent, config: Path | None) -> None:
    """SIGHUP with a topology: re-read it for the inventory guard (`redkeeper reshard` adds
    or removes a shard), then run a cycle, which also restarts a nutcracker whose
    nutcracker.yml was staged with a pending restart. A bad file changes nothing."""
    try:
        topology = load(config)
    except RedkeeperError as exc:
        log.error("SIGHUP: the topology was not reloaded (nothing changed): %s", exc)
    else:
        agent_obj.set_inventory(topology.inventory())
        log.info(
            "SIGHUP: inventory reloaded from %s: %s",
            topology.source,
            ", ".join(shard.name for shard in topology.shards),
        )
    agent_obj.wake()


async def _run(agent_obj: Agent, reload: Callable[[], None] | None) -> None:
    """Until SIGINT/SIGTERM. SIGHUP: `reload` (with a topology), else a cycle now."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload if reload is not None else agent_obj.wake)
    await agent_obj.run(stop)


def _with_topology(
    config: Path | None,
    nutcracker_config: Path | None,
    managed: bool,
    restart_cmd: tuple[str, ...] | None,
    staging: Path | None,
    metrics: str | None,
    state_dir: Path | None,
) -> Agent:
    topology = load(config)
    log.info(
        "topology %s%s: following the Sentinels %s",
        topology.source,
        " (no -c FILE and no --sentinel given)" if config is None else "",
        ", ".join(str(a) for a in topology.spec.sentinel.nodes),
    )
    if state_dir is not None:
        topology = replace(topology, spec=topology.spec.model_copy(update={"state_dir": state_dir}))
    spec = topology.spec
    layout = Layout.for_local(topology.state_dir)
    pool_path = nutcracker_config or layout.config("nutcracker.yml")
    strategy = choose_strategy(
        spec.agent,
        managed=managed,
        restart_cmd=restart_cmd,
        staging=staging,
        base_dir=topology.base_dir,
        source=topology.source,
    )
    nutcracker = None
    if strategy.kind == "managed":
        argv = nutcracker_argv(topology, find_binary("nutcracker"), pool_path)
        nutcracker = ManagedNutcracker(
            argv, spec.proxy.listen, topology.state_dir, layout.log("nutcracker")
        )
    target: Target
    if spec.proxy.mode == "steady":
        # nutcracker (run by the agent in --managed, else by its own unit) is never restarted
        # for a failover: HAProxy is repointed at run time instead.
        plan = haproxy_plan(topology, layout)
        target = SteadyTarget(
            plan,
            RuntimeAPI(plan.admin_socket, timeout=0.5),
            nutcracker=nutcracker,
            nutcracker_config=pool_path,
        )
    else:
        target = nutcracker_target(
            strategy, pool_path, listen=spec.proxy.listen, managed=nutcracker
        )
    metrics_address = spec.agent.metrics
    if metrics is not None:
        metrics_address = _address(metrics, "--metrics") if metrics else None
    return Agent(
        spec.sentinel.nodes,
        target,
        password=topology.password(),
        inventory=topology.inventory(),
        settings=AgentSettings.for_topology(topology),
        metrics_address=metrics_address,
        write_guard=(spec.redis.min_replicas_to_write, spec.redis.min_replicas_max_lag),
    )


def _standalone(
    sentinels: tuple[str, ...],
    nutcracker_config: Path | None,
    choose: Callable[[], Strategy],
    stats: str | None,
    metrics: str | None,
    password_env: str | None,
    state_dir: Path | None,
) -> Agent:
    if nutcracker_config is None:
        raise _usage(
            "--nutcracker-config",
            "standalone mode needs the nutcracker.yml to keep in line",
            "add --nutcracker-config /etc/nutcracker/nutcracker.yml",
        )
    strategy = choose()
    addresses = [_address(s, "--sentinel") for s in sentinels]
    log.info("standalone: following the Sentinels %s", ", ".join(map(str, addresses)))
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise _usage("--password-env", f"{password_env} is not set", f"export {password_env}")
    pools = load_pools(read_text(nutcracker_config), source=str(nutcracker_config))
    listen = _address(next(iter(pools.values())).listen, "listen") if pools else None
    managed = None
    if strategy.kind == "managed":
        if listen is None:
            raise _usage("--nutcracker-config", "no pool to listen on", "add a pool")
        state = state_dir or nutcracker_config.parent
        stats_addr = _address(stats or "127.0.0.1:22222", "--stats")
        argv = [
            find_binary("nutcracker"),
            "-c",
            str(nutcracker_config),
            "-s",
            str(stats_addr.port),
            "-a",
            stats_addr.host,
        ]
        managed = ManagedNutcracker(argv, listen, state, state / "nutcracker.log")
    target = nutcracker_target(strategy, nutcracker_config, listen=listen, managed=managed)
    metrics_address = _address(metrics, "--metrics") if metrics else None
    return Agent(addresses, target, password=password, metrics_address=metrics_address)
