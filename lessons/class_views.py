"""HTTP views of class sessions: start one, join one, end it, download its results."""

from __future__ import annotations

import io

import segno
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from scalelab.limits import LimitError, throttle
from simulations.engines.base import EngineError
from simulations.validation import MediaTypeError, json_body
from simulations.views import visitor_id

from . import classes
from .models import ClassSession

WRONG_CODES = "20/m"  # codes that name no class, per address: guessing is slow


def _refused(exc: classes.ClassError | EngineError | LimitError) -> JsonResponse:
    if isinstance(exc, LimitError):
        response = JsonResponse({"errors": {exc.field: exc.message}}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    status = getattr(exc, "status", 415 if isinstance(exc, MediaTypeError) else 400)
    return JsonResponse({"errors": {exc.field: exc.message}}, status=status)


def _live(request, code: str) -> ClassSession:
    """The live class of a code; a wrong code counts against the address, so that
    codes cannot be found by trying them all (a whole class joining never counts)."""
    try:
        return classes.class_live(code)
    except classes.ClassError as exc:
        if exc.message.startswith("no class"):
            throttle(
                request,
                "classes.wrong",
                WRONG_CODES,
                field="code",
                what="wrong class codes",
            )
        raise


def _joined_key(code: str) -> str:
    return f"class:{code}"


def class_links(request, session: ClassSession) -> dict[str, str]:
    join = reverse("class-join-page", args=[session.code])
    return {
        "code": session.code,
        "join_url": request.build_absolute_uri(join),
        "ws_url": f"/ws/classes/{session.code}/",
    }


@require_http_methods(["POST"])
def class_create_view(request):
    try:
        session = classes.class_create(request.user, json_body(request))
    except (classes.ClassError, EngineError) as exc:
        return _refused(exc)
    body = {
        **class_links(request, session),
        "lesson": session.lesson.slug,
        "mode": session.mode,
        "expires_at": session.expires_at.isoformat(),
    }
    return JsonResponse(body, status=201)


@require_http_methods(["POST"])
def class_join_view(request, code):
    try:
        session = _live(request, code)
        body = json_body(request)
        unknown = set(body) - {"name"}
        if unknown:
            raise classes.ClassError(
                400, sorted(unknown)[0], "the body has the field name only"
            )
        member, created = classes.class_join(
            session, visitor_id(request), body.get("name")
        )
    except (classes.ClassError, EngineError, LimitError) as exc:
        return _refused(exc)
    request.session[_joined_key(session.code)] = member.pk
    return JsonResponse(
        {
            **class_links(request, session),
            "lesson": session.lesson.slug,
            "member": member.pk,
        },
        status=201 if created else 200,
    )


def _teachers(request, code) -> ClassSession:
    session = (
        ClassSession.objects.select_related("lesson")
        .filter(code=classes.normalise_code(code))
        .first()
    )
    if session is None:
        raise classes.ClassError(404, "code", "no class has this code")
    if not request.user.is_authenticated or session.teacher_id != request.user.pk:
        raise classes.ClassError(403, "user", "only the class's teacher can do this")
    return session


@require_http_methods(["POST"])
def class_end_view(request, code):
    try:
        session = _teachers(request, code)
    except classes.ClassError as exc:
        return _refused(exc)
    classes.class_end(session)
    return JsonResponse({"code": session.code, "ended": True})


@require_GET
def class_results_view(request, code):
    try:
        session = _teachers(request, code)
    except classes.ClassError as exc:
        return _refused(exc)
    response = HttpResponse(
        classes.results_csv(session), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="class-{session.code}-{session.lesson.slug}.csv"'
    )
    return response


@require_http_methods(["GET", "POST"])
def join_page(request, code=""):
    """The join form (code in the URL or typed), working without JavaScript."""
    context = {
        "code": classes.normalise_code(code) if code else "",
        "name": "",
        "error": "",
    }
    if request.method == "POST":
        context.update(
            code=request.POST.get("code", ""), name=request.POST.get("name", "")
        )
        try:
            session = classes.class_live(context["code"])
            member, _ = classes.class_join(
                session, visitor_id(request), context["name"]
            )
        except classes.ClassError as exc:
            context["error"] = (
                f"{'Class code' if exc.field == 'code' else 'Name'}: {exc.message}"
            )
            return render(request, "lessons/join.html", context, status=exc.status)
        request.session[_joined_key(session.code)] = member.pk
        return redirect(f"{session.lesson.get_absolute_url()}?class={session.code}")
    return render(request, "lessons/join.html", context)


@require_GET
def class_qr_view(request, code):
    """The join URL as a QR code, made here (no outside service), as SVG."""
    try:
        session = _live(request, code)
    except (classes.ClassError, LimitError) as exc:
        return _refused(exc)
    url = class_links(request, session)["join_url"]
    qr = segno.make(url, error="m")
    out = io.BytesIO()
    qr.save(
        out,
        kind="svg",
        scale=8,
        border=2,
        dark="#000000",
        light="#ffffff",
        xmldecl=False,
        title=f"Join class {session.code}: {url}",
    )
    response = HttpResponse(out.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    return response
