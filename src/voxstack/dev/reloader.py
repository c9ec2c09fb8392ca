"""The dev loop: changes -> which services -> reload. The supervisor knows nothing about it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from voxstack.config import SettingsError, load_settings
from voxstack.dev import settings as dev_settings
from voxstack.dev.depmap import DependencyMap
from voxstack.dev.watcher import DEFAULT_IGNORES, SourceFilter, watch
from voxstack.registry import SERVER_ENTRY, SERVICES
from voxstack.supervisor.supervisor import Supervisor

logger = logging.getLogger(__name__)


def entry_points(services: Sequence[str]) -> dict[str, list[str]]:
    """What each service's process runs first: the lean server entry, then its factory module."""
    return {name: [f"{SERVER_ENTRY}.__main__", SERVICES[name].module] for name in services}


def forget_bytecode(files: Iterable[Path]) -> None:
    """Remove the bytecode cached for these saved files.

    Python checks a cached file against its source's size and modification time
    in whole seconds: a second save within the same second that keeps the size
    (a digit changed) would otherwise run the code of the first.
    """
    for path in files:
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.unlink(importlib.util.cache_from_source(str(path)))


class Reloader:
    def __init__(
        self,
        supervisor: Supervisor,
        source_root: Path,
        watch_paths: Sequence[Path],
        *,
        polling: bool | None,
        poll_ms: int,
        ignores: Sequence[str] = DEFAULT_IGNORES,
        proto_root: Path | None = None,
        replay_dir: Path | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.source_root = source_root
        self.watch_paths = list(watch_paths)
        self.polling = polling
        self.poll_ms = poll_ms
        self.ignores = ignores
        self.proto_root = proto_root
        #: Pinned conversations replayed after every reload (`voxstack dev --replay DIR`), or None.
        self.replay_dir = replay_dir
        self.depmap = DependencyMap(source_root, "voxstack", entry_points(list(supervisor.slots)))

    async def run(self) -> None:
        await asyncio.gather(self._watch_code(), self._watch_settings(), self._warm_up())

    async def _warm_up(self) -> None:
        """With --replay, load the replay's code now rather than in the first save's replay."""
        if self.replay_dir is not None:
            from voxstack.replay import warm_up

            await asyncio.to_thread(warm_up)

    async def _watch_code(self) -> None:
        async for files, saved_at in watch(
            self.watch_paths,
            polling=self.polling,
            poll_ms=self.poll_ms,
            ignores=self.ignores,
            stop_event=self.supervisor.stopping,
        ):
            await self.on_change(files, saved_at)

    async def _watch_settings(self) -> None:
        """The settings file in the working directory (where the services read it): each save reloads the
        services whose settings it changed."""
        async for _, saved_at in watch(
            [Path.cwd()],
            polling=self.polling,
            poll_ms=self.poll_ms,
            stop_event=self.supervisor.stopping,
            files=SourceFilter(suffixes=(), names=(dev_settings.SETTINGS_FILE,)),
            recursive=False,
        ):
            await self.on_settings_change(saved_at)

    async def on_settings_change(self, saved_at: float) -> None:
        """Load the settings as a service would; reload the services they changed for, or report the error
        on those it concerns (the running instances keep serving)."""
        supervisor = self.supervisor
        running = list(supervisor.slots)
        name = dev_settings.SETTINGS_FILE
        try:
            new = load_settings(mode=supervisor.settings.mode)
        except SettingsError as exc:
            concerned = dev_settings.concerned(running, exc.sections) or running
            logger.error("%s: %s; %s keep%s the settings they run with", name, exc, ", ".join(concerned),
                         "s" if len(concerned) == 1 else "")  # fmt: skip
            supervisor.report_settings_error(concerned, f"{name}: {exc}")
            return
        paths = dev_settings.changed(supervisor.settings, new)
        fixed = [p for p in paths if p in dev_settings.SUPERVISOR_SETTINGS]
        if fixed:
            logger.warning("%s: %s changed: restart voxstack dev to apply", name, dev_settings.variables(fixed))
        paths = [p for p in paths if p not in dev_settings.SUPERVISOR_SETTINGS]
        supervisor.use_settings(dev_settings.keep_supervisor_settings(supervisor.settings, new))
        targets = dev_settings.concerned(running, paths)
        if not targets:
            logger.info("%s saved: no setting a running service reads changed", name)
            return
        reason = f"{name}: {dev_settings.variables(paths)}"
        logger.info("%s: reloading %s", reason, ", ".join(targets))
        await self._reload(targets, reason, saved_at)

    def _rel(self, path: Path) -> str:
        for base in (self.source_root.parent, self.source_root):
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return str(path)

    async def on_change(self, files: set[Path], saved_at: float) -> None:
        running = set(self.supervisor.slots)
        if any(f.name == "pyproject.toml" for f in files):
            if Path("/.dockerenv").exists():
                logger.warning(
                    "pyproject.toml changed: dependencies may have changed. Rebuild the images on the host: "
                    "`make compose-dev` (or `docker compose ... watch` rebuilds them by itself)"
                )
            else:
                logger.warning(
                    "pyproject.toml changed: dependencies may have changed. Run `make venv` "
                    "(or pip install -e '.[dev,test,asr,llm,tts,core]'), then restart voxstack dev"
                )
        forget_bytecode(f for f in files if f.suffix == ".py")
        targets: set[str] = set()
        protos = [f for f in files if f.suffix == ".proto"]
        if protos and await self._regenerate():
            targets |= running
        self.depmap.rebuild()
        unclaimed = []
        loaded = self.loaded_modules()
        for path in (f for f in files if f.suffix == ".py"):
            hit = self.depmap.services_for(path, loaded) & running
            targets |= hit
            if not hit:
                unclaimed.append(self._rel(path))
        if unclaimed:
            logger.info("no running service imports %s: nothing to reload", ", ".join(sorted(unclaimed)))
            if any("/dev/" in u or "/supervisor/" in u for u in unclaimed):
                logger.warning("supervisor code changed: restart voxstack dev to run it")
        if not targets:
            return
        reason = ", ".join(sorted(self._rel(f) for f in files))
        logger.info("change in %s: reloading %s", reason, ", ".join(sorted(targets)))
        await self._reload(sorted(targets), reason, saved_at)

    async def _reload(self, targets: list[str], reason: str, saved_at: float) -> None:
        """Reload; then, with --replay, replay the pinned conversations against what now serves. The new
        instances' spares start after the replays: on a small machine they would slow them down."""
        gate = self.supervisor.spares_may_start
        if self.replay_dir is not None:
            gate.clear()
        try:
            switched = await self.supervisor.reload(targets, reason, saved_at)
            if self.replay_dir is not None and any(switched.values()):
                await self.replay_conversations(saved_at)
        finally:
            gate.set()

    async def replay_conversations(self, saved_at: float) -> None:
        """Each pinned conversation under replay_dir through the core, its verdict logged (and written to
        the state directory's replays.json, for the dashboard)."""
        from voxstack.recordings import RecordingError, turn_settings
        from voxstack.replay import check

        assert self.replay_dir is not None
        supervisor = self.supervisor
        if "core" not in supervisor.slots:
            logger.warning("--replay needs the core: it is not running here")
            return
        base = supervisor.settings.core.base_url
        try:
            # As many at once as the core takes conversations (the llm's contexts): the verdicts come sooner.
            settings = supervisor.settings
            keys = [k.get_secret_value() for k in settings.core.api_keys]
            verdicts = await asyncio.to_thread(
                check,
                self.replay_dir,
                base,
                fast=True,
                timeout=60.0,
                audio_dir=supervisor.runstate.replay_audio,
                at_once=settings.core.max_conversations,
                stack=turn_settings(settings),
                api_key=keys[0] if keys else None,
            )
        except RecordingError as exc:
            logger.error("replay: %s", exc)
            return
        for verdict in verdicts:
            if verdict.passed:
                logger.info("replay: PASS %s (%.1f s)", verdict.name, verdict.seconds)
            else:
                logger.warning("replay: FAIL %s: %s", verdict.name, "; ".join(verdict.problems))
            for difference in verdict.result.get("differences", ()):
                logger.warning("replay: %s differs from the stack: %s", verdict.name, difference)
        passed = sum(v.passed for v in verdicts)
        took = time.time() - saved_at
        logger.info("replay: %d of %d conversations pass, %.1f s after the save", passed, len(verdicts), took)
        supervisor.runstate.write_replays(
            {
                "at": time.time(),
                "seconds_after_save": round(took, 3),
                "folder": str(self.replay_dir.resolve()),
                "verdicts": [asdict(v) for v in verdicts],
            }
        )

    def loaded_modules(self) -> dict[str, list[str]]:
        """The modules each running instance reported having loaded."""
        found = {}
        for name, slot in self.supervisor.slots.items():
            if slot.current is not None and slot.current.modules is not None:
                found[name] = slot.current.modules
        return found

    async def _regenerate(self) -> bool:
        from voxstack import protogen

        root = self.proto_root or protogen.PROTO_ROOT
        try:
            written = await asyncio.to_thread(protogen.generate, self.source_root, root)
        except Exception:
            logger.exception("regenerating the stubs failed; the running services keep the old API")
            return False
        logger.info("regenerated %d stub files from %s", len(written), root)
        return True
