"""System checks: misconfiguration is caught at start, not at the first request."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_secret_key(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_KEY:
        return [
            Error(
                "SECRET_KEY is the development key while DEBUG is off.",
                hint="Set SECRET_KEY to a long random value.",
                id="scalelab.E001",
            )
        ]
    return []


@register()
def check_engines(app_configs, **kwargs):
    from .engines import REGISTRY

    problems = []
    for kind, engine in REGISTRY.items():
        for command in engine.commands:
            if not hasattr(engine, f"on_{command.name}"):
                problems.append(
                    Error(
                        f"engine {kind!r} declares command {command.name!r} "
                        f"but has no on_{command.name} method.",
                        id="simulations.E001",
                    )
                )
        for quiet in set(engine.quiet_events) - set(engine.event_types):
            problems.append(
                Error(
                    f"engine {kind!r} lists quiet event {quiet!r} it does not declare.",
                    id="simulations.E003",
                )
            )
        names = [m.name for m in engine.metric_specs]
        if len(set(names)) != len(names):
            problems.append(
                Error(
                    f"engine {kind!r} declares a metric twice.", id="simulations.E002"
                )
            )
    if not REGISTRY:
        problems.append(
            Warning("no simulation engines were found.", id="simulations.W001")
        )
    return problems
