"""Admin pages of the lesson admin: live preview, arranging, history and revert, import.

Each view takes the LessonAdmin (``LessonAdmin.get_urls`` wraps them in
``admin_site.admin_view``: staff only, CSRF-protected) and leaves the work to
``lessons.authoring``.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch, Q
from django.forms.formsets import all_valid
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from simulations.views import visitor_id

from .authoring import (
    ArrangeError,
    ImportFailed,
    ImportResult,
    error_text,
    import_held,
    import_hold,
    import_release,
    lesson_current_text,
    lesson_revert,
    lessons_arrange,
    lessons_import,
    version_diff,
    version_label,
)
from .forms import ImportForm, form_errors, lesson_from_forms
from .models import Lesson, LessonVersion, Module
from .services import LessonFileError
from .views import lesson_page_context

MAX_UPLOAD_BYTES = 20_000_000


def _context(request, model_admin, title: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        **extra,
    }


@require_POST
@xframe_options_sameorigin
def lesson_preview(request, model_admin, object_id=None):
    """Render the unsaved form as the student page, or a page listing its errors.

    Nothing is saved: the forms are only validated, inside a transaction that is
    rolled back whatever happens.
    """
    obj = None
    if object_id is not None:
        obj = model_admin.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("no such lesson")
        if not model_admin.has_change_permission(request, obj):
            raise PermissionDenied
    elif not model_admin.has_add_permission(request):
        raise PermissionDenied
    data, errors = None, []
    with transaction.atomic():
        form, formsets = model_admin.bound_forms(request, obj)
        valid = form.is_valid()  # first: the steps are checked against its engine
        valid = all_valid(formsets) and valid
        if valid:
            try:
                data = lesson_from_forms(form, formsets)
            except LessonFileError as exc:
                errors = [("Lesson", error_text(exc))]
        else:
            errors = form_errors(form, formsets)
        transaction.set_rollback(True)
    if data is None:
        # A page like any other: the frame shows it, and the console stays quiet.
        return render(
            request, "admin/lessons/lesson/preview_errors.html", {"errors": errors}
        )
    context = lesson_page_context(data, who=visitor_id(request), preview=True)
    context["user"] = AnonymousUser()  # the page as a student sees it
    response = render(request, "lessons/detail.html", context)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def lessons_arrange_view(request, model_admin):
    """Order modules and lessons by drag and drop (or move up/down buttons)."""
    user = request.user
    if not (
        user.has_perm("lessons.change_lesson")
        and user.has_perm("lessons.change_module")
    ):
        raise PermissionDenied
    error = ""
    if request.method == "POST":
        try:
            layout = json.loads(request.POST.get("layout", ""))
        except ValueError:
            error = "layout: not valid JSON"
        else:
            try:
                moved = lessons_arrange(layout, author=user)
            except ArrangeError as exc:
                error = str(exc)
            else:
                messages.success(
                    request, f"Saved the new order ({moved} lesson(s) moved)."
                )
                return redirect("admin:lessons_lesson_arrange")
    modules = Module.objects.order_by("order", "slug").prefetch_related(
        Prefetch("lessons", queryset=Lesson.objects.order_by("order", "slug"))
    )
    layout = [
        {"module": m.pk, "lessons": [lesson.pk for lesson in m.lessons.all()]}
        for m in modules
    ]
    return TemplateResponse(
        request,
        "admin/lessons/lesson/arrange.html",
        _context(
            request,
            model_admin,
            "Arrange lessons",
            modules=modules,
            layout=json.dumps(layout),
            error=error,
        ),
        status=400 if error else 200,
    )


def lessons_import_view(request, model_admin):
    """Upload lesson files (or zips of them): all of them are imported, or none.

    When they would retitle or move a module that holds other lessons too, the
    page lists those changes and asks first; meanwhile the files wait in the cache
    under a token the confirmation posts back.
    """
    user = request.user
    if not (
        user.has_perm("lessons.add_lesson") and user.has_perm("lessons.change_lesson")
    ):
        raise PermissionDenied
    token = request.POST.get("pending", "")
    form = ImportForm(None if token else request.POST or None, request.FILES or None)
    errors: list[str] = []
    uploads = None
    if request.method == "POST" and token:
        uploads = import_held(token, user=user)
        if uploads is None:
            errors = ["this import waited too long and was dropped: upload it again"]
    elif request.method == "POST" and form.is_valid():
        files = form.cleaned_data["files"]
        if sum(f.size for f in files) > MAX_UPLOAD_BYTES:
            errors = [f"upload at most {MAX_UPLOAD_BYTES // 1_000_000} MB at once"]
        else:
            uploads = [(f.name, f.read()) for f in files]
    pending = None
    if uploads is not None:
        confirm = request.POST.get("confirm", "") if token else ""
        try:
            result = lessons_import(uploads, author=user, confirm=confirm)
        except ImportFailed as exc:
            errors = exc.errors
            if token:
                import_release(token, user=user)
        else:
            if not result.confirmation:
                if token:
                    import_release(token, user=user)
                return _imported(request, result)
            pending = {
                "changes": result.module_changes,
                "confirmation": result.confirmation,
                "token": token or import_hold(result.files, user=user),
                "changed_since": bool(confirm),
            }
    return TemplateResponse(
        request,
        "admin/lessons/lesson/import.html",
        _context(
            request,
            model_admin,
            "Import lesson files",
            form=form,
            errors=errors,
            pending=pending,
        ),
        status=400 if errors or form.errors else 200,
    )


def _imported(request, result: ImportResult):
    slugs = ", ".join(lesson.slug for lesson in result.lessons)
    messages.success(request, f"Imported {len(result.lessons)} lesson(s): {slugs}.")
    if result.skipped:
        messages.warning(request, "Skipped (not .md): " + ", ".join(result.skipped))
    return redirect("admin:lessons_lesson_changelist")


def _may_revert(request, model_admin, lesson) -> bool:
    if lesson is not None:
        return model_admin.has_change_permission(request, lesson)
    return model_admin.has_add_permission(request)


def lesson_versions_view(request, model_admin, slug):
    """A lesson's versions (its deleted self included), each diffed against now."""
    user = request.user
    if not (
        model_admin.has_view_permission(request)
        or user.has_perm("lessons.view_lessonversion")
    ):
        raise PermissionDenied
    lesson = Lesson.objects.select_related("module").filter(slug=slug).first()
    versions = LessonVersion.objects.filter(Q(slug=slug) | Q(lesson__slug=slug))
    versions = list(versions.select_related("author").distinct())
    if lesson is None and not versions:
        raise Http404("no lesson or versions with this slug")
    current = lesson_current_text(slug)
    rows = [
        {
            "version": version,
            "label": version_label(version),
            "is_current": version.text == current,
            "diff": version_diff(version.text, current) if current is not None else [],
        }
        for version in versions
    ]
    change_url = (
        reverse("admin:lessons_lesson_change", args=[quote(lesson.pk)])
        if lesson
        else ""
    )
    return TemplateResponse(
        request,
        "admin/lessons/lesson/versions.html",
        _context(
            request,
            model_admin,
            f"History of {lesson.title if lesson else slug}",
            lesson=lesson,
            slug=slug,
            rows=rows,
            current=current,
            change_url=change_url,
            can_revert=_may_revert(request, model_admin, lesson),
        ),
    )


@require_POST
def lesson_revert_view(request, model_admin, version_id):
    """Save a version's text as the lesson (POST, after the page's confirmation)."""
    version = get_object_or_404(LessonVersion, pk=version_id)
    lesson = version.lesson or Lesson.objects.filter(slug=version.slug).first()
    if not _may_revert(request, model_admin, lesson):
        raise PermissionDenied
    try:
        reverted = lesson_revert(version, author=request.user)
    except LessonFileError as exc:
        messages.error(request, f"Could not revert: {exc}")
        return redirect("admin:lessons_lesson_versions", version.slug)
    messages.success(
        request,
        f"Reverted “{reverted.title}” to the version of {version_label(version)}; "
        "the text you replaced is kept in its history.",
    )
    return redirect("admin:lessons_lesson_change", quote(reverted.pk))
