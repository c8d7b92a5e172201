"""HTTP views for runs and engines: thin adapters over the run service."""

from __future__ import annotations

import uuid

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from scalelab.limits import LimitError, request_address, throttle

from .engines import REGISTRY, get_engine
from .engines.base import EngineError
from .models import Run
from .runs.access import can_control
from .runs.constants import limits
from .runs.errors import QuotaError
from .runs.lifecycle import run_create, run_status, visitor_live_run
from .runs.replay import timeline_of
from .validation import RUN_CREATE, MediaTypeError, json_body, validate


def visitor_id(request) -> str:
    """Return the anonymous visitor's id, kept in the session, creating it once."""
    visitor = request.session.get("visitor")
    if not visitor:
        visitor = request.session["visitor"] = uuid.uuid4().hex
    return visitor


def _errors(status: int, **fields: str) -> JsonResponse:
    return JsonResponse({"errors": fields}, status=status)


def _refused(exc: LimitError | EngineError) -> JsonResponse:
    """The answer to what the run and curve services refuse, naming the field."""
    if isinstance(exc, LimitError):
        response = _errors(exc.status, **{exc.field: exc.message})
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, QuotaError):
        return _errors(429, **{exc.field: exc.message})
    if isinstance(exc, MediaTypeError):
        return _errors(415, **{exc.field: exc.message})
    return _errors(400, **{exc.field: exc.message})


@require_http_methods(["POST"])
def run_create_view(request):
    from lessons.classes import class_allowance  # lessons build on simulations

    visitor = visitor_id(request)
    client, live_cap, per_min = request_address(request), None, None
    # A class's members are counted per class: a class behind one address is
    # not held to what one address may start.
    allowance = class_allowance(visitor)
    if allowance is not None:
        client, live_cap, per_min = allowance
    try:
        throttle(
            request,
            "runs.new",
            f"{per_min or limits()['ADDRESS_RUNS_PER_MIN']}/m",
            field="runs",
            what="new runs",
            key=client if allowance else "",
        )
        # The whole body is checked here (an unknown field is refused); the
        # service checks its arguments again, as it does for every caller.
        fields = validate(RUN_CREATE, json_body(request))
        run = run_create(
            **fields,
            owner=request.user,
            visitor=visitor,
            client=client,
            client_cap=live_cap,
        )
    except (LimitError, EngineError) as exc:
        return _refused(exc)
    return JsonResponse(run_status(run), status=201)


@require_GET
def run_detail_view(request, run_id):
    run = get_object_or_404(Run, id=run_id)
    data = run_status(run)
    data["can_control"] = can_control(
        run, request.user, request.session.get("visitor", "")
    )
    return JsonResponse(data)


@require_GET
def run_timeline_view(request, run_id):
    """The run's timeline: anyone holding its id may replay it; no owner is named."""
    run = get_object_or_404(Run, id=run_id)
    try:
        return JsonResponse(timeline_of(run))
    except EngineError as exc:
        return _errors(409, **{exc.field: exc.message})


@require_GET
def engines_view(request):
    return JsonResponse({"engines": [REGISTRY[k].describe() for k in sorted(REGISTRY)]})


@require_GET
def sandbox_index(request):
    engines = [REGISTRY[k] for k in sorted(REGISTRY)]
    return render(request, "simulations/sandbox_index.html", {"engines": engines})


@require_GET
@ensure_csrf_cookie
def sandbox(request, kind):
    try:
        engine = get_engine(kind)
    except EngineError:
        raise Http404("no such engine") from None
    visitor = visitor_id(request)
    from .curves import PARAMS as curve_params

    context = {
        "engine": engine,
        "describe": engine.describe(),
        "curve_params": None,
        "live_run": visitor_live_run(request.user, visitor, kind),
    }
    if kind == "cache":
        context["curve_params"] = [p.describe() for p in curve_params]
    return render(request, "simulations/sandbox.html", context)


@require_http_methods(["POST"])
def curve_create_view(request):
    from . import curves

    try:
        job = curves.curve_create(
            json_body(request),
            owner=request.user,
            visitor=visitor_id(request),
            client=request_address(request),
        )
    except (LimitError, EngineError) as exc:
        return _refused(exc)
    return JsonResponse(curves.curve_status(job), status=201)


@require_GET
def curve_detail_view(request, job_id):
    from . import curves
    from .models import CurveJob

    return JsonResponse(curves.curve_status(get_object_or_404(CurveJob, id=job_id)))
