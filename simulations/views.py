"""HTTP views for runs and engines: thin adapters over the run service."""

from __future__ import annotations

import json
import uuid

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from . import runs
from .engines import REGISTRY, get_engine
from .engines.base import EngineError
from .models import Run


def visitor_id(request) -> str:
    """Return the anonymous visitor's id, kept in the session, creating it once."""
    visitor = request.session.get("visitor")
    if not visitor:
        visitor = request.session["visitor"] = uuid.uuid4().hex
    return visitor


def _errors(status: int, **fields: str) -> JsonResponse:
    return JsonResponse({"errors": fields}, status=status)


@require_http_methods(["POST"])
def run_create_view(request):
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _errors(400, body="the request body must be a JSON object")
    if not isinstance(body, dict):
        return _errors(400, body="the request body must be a JSON object")
    unknown = sorted(set(body) - {"kind", "params", "seed", "lesson"})
    if unknown:
        return _errors(
            400, **{unknown[0]: "unknown field; fields: kind, params, seed, lesson"}
        )
    lesson = body.get("lesson") or ""
    if not isinstance(lesson, str):
        return _errors(400, lesson="lesson must be a lesson's slug")
    try:
        run = runs.run_create(
            kind=body.get("kind"),
            params=body.get("params"),
            seed=body.get("seed"),
            owner=request.user,
            visitor=visitor_id(request),
            lesson=lesson,
        )
    except runs.QuotaError as exc:
        return _errors(429, **{exc.field: exc.message})
    except EngineError as exc:
        field = (
            exc.field
            if exc.field in ("kind", "seed", "params")
            else f"params.{exc.field}"
        )
        return _errors(400, **{field: exc.message})
    return JsonResponse(runs.run_status(run), status=201)


@require_GET
def run_detail_view(request, run_id):
    try:
        uuid.UUID(str(run_id))
    except ValueError:
        raise Http404("no such run") from None
    run = get_object_or_404(Run, id=run_id)
    data = runs.run_status(run)
    data["can_control"] = runs.can_control(
        run, request.user, request.session.get("visitor", "")
    )
    return JsonResponse(data)


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
    visitor_id(request)
    from .curves import PARAMS as curve_params

    context = {"engine": engine, "describe": engine.describe(), "curve_params": None}
    if kind == "cache":
        context["curve_params"] = [p.describe() for p in curve_params]
    return render(request, "simulations/sandbox.html", context)


@require_http_methods(["POST"])
def curve_create_view(request):
    from . import curves

    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _errors(400, body="the request body must be a JSON object")
    try:
        job = curves.curve_create(body, owner=request.user, visitor=visitor_id(request))
    except runs.QuotaError as exc:
        return _errors(429, **{exc.field: exc.message})
    except EngineError as exc:
        return _errors(400, **{exc.field: exc.message})
    return JsonResponse(curves.curve_status(job), status=201)


@require_GET
def curve_detail_view(request, job_id):
    from . import curves
    from .models import CurveJob

    try:
        uuid.UUID(str(job_id))
    except ValueError:
        raise Http404("no such job") from None
    return JsonResponse(curves.curve_status(get_object_or_404(CurveJob, id=job_id)))
