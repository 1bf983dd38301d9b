"""The runner a server's settings name: local worker processes (default) or Ray."""

from __future__ import annotations

from ..settings import Settings, SettingsError
from .local import LocalProcessRunner
from .runner import Runner


def make_runner(settings: Settings) -> Runner:
    if settings.runner == "local":
        return LocalProcessRunner(settings.start_method, settings.cancel_grace)
    try:
        from .ray_runner import RayRunner
    except ImportError as exc:  # pragma: no cover - the cluster extra is not installed
        raise SettingsError("runner ray needs Ray: pip install 'li2lab[cluster]'") from exc
    runner = RayRunner(settings.ray_address, settings.cancel_grace)
    if settings.max_jobs is not None and settings.max_jobs > runner.cpus():
        raise SettingsError(f"max_jobs: {settings.max_jobs} jobs at once, but the Ray cluster "
                            f"has {runner.cpus()} CPUs")
    return runner
