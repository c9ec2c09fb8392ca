"""``voxstack dev``, ``up``, ``down``, ``logs`` and ``status``: the whole stack as supervised processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voxstack.cli.options import CoreUrlOption, core_url, fail, settings_from_flags
from voxstack.config import Settings, SettingsError, load_settings, state_dir_setting
from voxstack.registry import ALL_SERVICES, REPLAY_DIR_ENV

if TYPE_CHECKING:
    from voxstack.runstate import RunState
    from voxstack.supervisor.supervisor import Supervisor

OnlyOption = Annotated[
    str | None, typer.Option("--only", help="Comma-separated subset of asr,llm,tts,core (default: all four).")
]
ReplaceOption = Annotated[bool, typer.Option("--replace", help="Stop a running `up` or `dev` first, then start.")]


def _start(settings: Settings, only: str | None, replace: bool, mode: str) -> tuple[list[str], RunState]:
    from voxstack.logs import configure_logging
    from voxstack.registry import parse_services
    from voxstack.runstate import AlreadyRunning, RunState

    configure_logging(settings, "supervisor")
    try:
        services = parse_services(only)
    except ValueError as exc:
        raise fail(str(exc)) from None
    runstate = RunState(settings.state_dir)
    try:
        runstate.acquire(mode, replace=replace, timeout=settings.grace_period + 15)
    except AlreadyRunning as exc:
        raise fail(str(exc), 1) from None
    return services, runstate


def banner(supervisor: Supervisor, extra: list[str]) -> None:
    settings = supervisor.settings
    title = "voxstack DEV: hot reload on" if supervisor.mode == "dev" else "voxstack (production)"
    lines = ["", f"==== {title} " + "=" * max(4, 60 - len(title)), f"  mode      {supervisor.mode}"]
    for name, slot in supervisor.slots.items():
        section = settings.service(name)
        address = settings.core.base_url if name == "core" else section.address
        if section.connect_address != section.address:  # a wildcard bind: say where it listens, too
            address += f" (listening on {section.host})"
        state = f"pid {slot.state.pid}" if slot.state.pid else slot.state.state.upper()
        lines.append(f"  {name:9} {address}  ({state})")
    lines += [f"  {line}" for line in extra]
    lines += [f"  logs      {supervisor.runstate.logs}", "  stop      Ctrl-C, or `voxstack down`", "=" * 66, ""]
    typer.echo("\n".join(lines), err=True)


def dev(
    only: OnlyOption = None,
    debug: Annotated[
        str | None, typer.Option(envvar="VOXSTACK_DEV_DEBUG", help="Run this service under debugpy.")
    ] = None,
    debug_port: Annotated[
        int, typer.Option(min=1, max=65535, envvar="VOXSTACK_DEV_DEBUG_PORT", help="debugpy port.")
    ] = 5678,
    debug_host: Annotated[
        str,
        typer.Option(envvar="VOXSTACK_DEV_DEBUG_HOST", help="debugpy interface (keep 127.0.0.1 unless you mean it)."),
    ] = "127.0.0.1",
    debug_wait: Annotated[
        bool,
        typer.Option(
            "--debug-wait", envvar="VOXSTACK_DEV_DEBUG_WAIT", help="Start the service only once a debugger attaches."
        ),
    ] = False,
    replace: ReplaceOption = False,
    watch: Annotated[
        list[Path] | None, typer.Option(help="Paths to watch (default: the voxstack source, proto/, pyproject.toml).")
    ] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="More file name patterns to ignore.")] = None,
    poll: Annotated[
        bool | None,
        typer.Option("--poll/--no-poll", envvar="VOXSTACK_DEV_POLL", help="Force polling on or off (default: detect)."),
    ] = None,
    poll_interval: Annotated[
        int, typer.Option(min=20, envvar="VOXSTACK_DEV_POLL_INTERVAL", help="Polling interval, ms.")
    ] = 300,
    strategy: Annotated[
        str,
        typer.Option(help="overlap (new beside old: zero downtime) or restart (stop, then start: half the memory)."),
    ] = "overlap",
    spares: Annotated[
        bool,
        typer.Option(
            "--spares/--no-spares",
            envvar="VOXSTACK_DEV_SPARES",
            help="Keep a warm spare of each service, libraries and code imported, for faster reloads (overlap only).",
        ),
    ] = True,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            envvar=REPLAY_DIR_ENV,
            help="Replay the pinned conversations in this folder after every reload (voxstack replay pin).",
        ),
    ] = None,
) -> None:
    """Run the stack in development mode: DEBUG logs, error details, hot reload on save."""
    import voxstack
    from voxstack import protogen
    from voxstack.dev.reloader import Reloader
    from voxstack.dev.watcher import DEFAULT_IGNORES
    from voxstack.supervisor.slot import DebugSpec
    from voxstack.supervisor.supervisor import Supervisor, write_line

    if strategy not in ("overlap", "restart"):
        raise fail("--strategy is overlap or restart")
    settings = settings_from_flags(mode="dev")
    debug = debug or None  # an empty VOXSTACK_DEV_DEBUG means no debugger
    if debug is not None and debug not in ALL_SERVICES:
        raise fail(f"--debug takes one of {', '.join(ALL_SERVICES)} (got {debug!r})")
    services, runstate = _start(settings, only, replace, "dev")
    package = Path(voxstack.__file__).resolve().parent
    paths = watch or [
        package,
        *(p for p in (protogen.PROTO_ROOT, protogen.PROJECT_ROOT / "pyproject.toml") if p.exists()),
    ]
    spec = DebugSpec(debug, debug_host, debug_port, debug_wait) if debug else None
    if replay is not None:
        os.environ[REPLAY_DIR_ENV] = str(replay.resolve())  # the core's "pin this turn" puts turns there
    supervisor = Supervisor(
        settings,
        services,
        runstate,
        debug=spec,
        strategy=strategy,
        echo=write_line,
        spares=spares,
    )
    reloader = Reloader(
        supervisor,
        package.parent,
        paths,
        polling=poll,
        poll_ms=poll_interval,
        ignores=(*DEFAULT_IGNORES, *(ignore or ())),
        replay_dir=replay,
    )
    extra = [f"watching  {', '.join(str(p) for p in paths)}"]
    if replay is not None:
        extra.append(f"replaying {replay} after every reload")
    if spec:
        extra.append(
            f"debugger  {spec.service} on {spec.host}:{spec.port}{' (waiting for a client)' if spec.wait else ''}"
        )

    # The watcher starts with the services, so a save during start-up is not missed.
    code = asyncio.run(supervisor.run(on_ready=lambda sup: banner(sup, extra), companions=[reloader.run]))
    raise typer.Exit(code)


def up(
    only: OnlyOption = None,
    replace: ReplaceOption = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background, logs to files.")] = False,
) -> None:
    """Run the stack in production mode: no watcher, no debugger; crashed services restart with backoff."""
    from voxstack.runstate import RunState
    from voxstack.supervisor.supervisor import Supervisor, write_line

    settings = settings_from_flags(mode="prod")
    if detach:
        runstate = RunState(settings.state_dir)
        argv = [
            sys.executable,
            "-m",
            "voxstack",
            "up",
            *(["--only", only] if only else []),
            *(["--replace"] if replace else []),
        ]
        with runstate.open_log("supervisor") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            record = runstate.read()
            if proc.poll() is not None:
                raise fail(f"voxstack up exited with {proc.returncode}: see {runstate.logs / 'supervisor.log'}", 1)
            if (
                record
                and record.supervisor_pid == proc.pid
                and record.services
                and all(s.state == "serving" for s in record.services.values())
            ):
                typer.echo(f"voxstack up running in the background (pid {proc.pid}); logs in {runstate.logs}")
                return
            time.sleep(0.2)
        raise fail(f"voxstack up did not become ready in time: see {runstate.logs}", 1)
    services, runstate = _start(settings, only, replace, "prod")
    supervisor = Supervisor(settings, services, runstate, echo=write_line)
    raise typer.Exit(asyncio.run(supervisor.run(on_ready=lambda sup: banner(sup, []))))


def down() -> None:
    """Stop whatever `voxstack up` or `voxstack dev` is running."""
    from voxstack.runstate import RunState, stop_pid

    settings = settings_or_none()
    runstate = RunState(settings.state_dir if settings else state_dir_setting())
    record = runstate.read()
    if record is None:
        typer.echo("nothing is running")
        return
    what = "voxstack dev" if record.mode == "dev" else "voxstack up"
    grace = settings.grace_period if settings else Settings.model_fields["grace_period"].default
    stopped = stop_pid(record.supervisor_pid, grace + 15)
    typer.echo(
        f"stopped {what} (pid {record.supervisor_pid})" if stopped else f"could not stop pid {record.supervisor_pid}"
    )
    raise typer.Exit(0 if stopped else 1)


def logs(
    service: Annotated[str | None, typer.Argument(help="asr, llm, tts, core or supervisor; all when omitted.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines to show first.")] = 50,
) -> None:
    """Show the logs of the services run by `voxstack up` or `voxstack dev`."""
    from voxstack.runstate import RunState

    folder = RunState(settings_from_flags().state_dir).logs
    names = [service] if service else ["supervisor", *ALL_SERVICES]
    files = [folder / f"{n}.log" for n in names if (folder / f"{n}.log").exists()]
    if not files:
        raise fail(f"no logs for {service or 'any service'} in {folder}", 1)
    handles = []
    for path in files:
        handle = path.open(errors="replace")
        for line in handle.readlines()[-lines:] if lines else []:
            typer.echo(f"{path.stem:10} {line.rstrip()}" if len(files) > 1 else line.rstrip())
        handles.append((path.stem, handle))
    while follow:
        quiet = True
        for name, handle in handles:
            for line in handle.readlines():
                quiet = False
                typer.echo(f"{name:10} {line.rstrip()}" if len(files) > 1 else line.rstrip())
        if quiet:
            time.sleep(0.2)


def status(
    url: CoreUrlOption = None,
    timeout: Annotated[float, typer.Option(min=0.1)] = 3.0,
) -> None:
    """Each service's health and address, as the core sees them (or asked directly when the core is down)."""
    from voxstack.health import check_health, read_core_health
    from voxstack.registry import MODEL_SERVICES
    from voxstack.runstate import RunState

    settings = settings_or_none()
    record = RunState(settings.state_dir if settings else state_dir_setting()).read()
    if record is not None:
        what = "voxstack dev" if record.mode == "dev" else "voxstack up"
        typer.echo(f"{what} running (supervisor pid {record.supervisor_pid})")
        for name, s in record.services.items():
            reload = time.strftime("%H:%M:%S", time.localtime(s.last_reload)) if s.last_reload else "-"
            took = f" ({s.last_reload_seconds:.2f} s, {s.reload_path})" if s.last_reload else ""
            memory = f"  rss {s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else ""
            memory += f" + spare {s.spare_rss_bytes / 2**20:.0f} MiB" if s.spare_rss_bytes else ""
            typer.echo(
                f"  {name:7} {s.state:9} pid {s.pid:<7} generation {s.generation:<3} last reload {reload}{took}"
                f"  restarts {s.restarts}{memory}" + (f"  last error: {s.last_error}" if s.last_error else "")
            )
    if settings is None:
        raise typer.Exit(2)  # where the core is, and how to reach it, is in the settings that do not load
    base = core_url(url)
    body = read_core_health(base, timeout)
    if body is not None:
        typer.echo(f"core      {base}  {body.get('status', '?')} (mode {body.get('mode', '?')})")
        services = body.get("services", {})
    else:
        typer.echo(f"core      {base}  UNREACHABLE")
        services = {}
        for name in MODEL_SERVICES:
            address = settings.backend_address(name)
            status = check_health(address, timeout=timeout, tls=settings.tls).status
            services[name] = {"status": status, "address": address}
    for name, info in services.items():
        typer.echo(f"{name:9} {info.get('address', '-')}  {info['status']}")
    healthy = body is not None and body.get("status") == "ok"
    raise typer.Exit(0 if healthy else 1)


def settings_or_none() -> Settings | None:
    """The settings; None, with the problems on stderr, when they do not load (for the commands that
    still have something to show or do then)."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"the settings do not load:\n{exc}", err=True)
        return None
