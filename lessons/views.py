from __future__ import annotations

import json

from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from simulations.engines import get_engine
from simulations.views import visitor_id

from .models import Lesson, Module
from .services import render_markdown


@require_GET
def lesson_index(request):
    modules = Module.objects.prefetch_related("lessons").all()
    groups = [
        (m, [lesson for lesson in m.lessons.all() if lesson.published]) for m in modules
    ]
    return render(
        request, "lessons/index.html", {"groups": [g for g in groups if g[1]]}
    )


@require_GET
@ensure_csrf_cookie
def lesson_detail(request, slug):
    lesson = get_object_or_404(Lesson, slug=slug, published=True)
    visitor_id(request)
    engine = get_engine(lesson.engine)
    ordered = list(Lesson.objects.filter(published=True))
    index = next(i for i, item in enumerate(ordered) if item.pk == lesson.pk)
    return render(
        request,
        "lessons/detail.html",
        {
            "lesson": lesson,
            "body": render_markdown(lesson.body),
            "engine": engine,
            "describe": engine.describe(),
            "preset": lesson.preset,
            "steps": [
                {**step, "actions_json": json.dumps(step.get("actions", []))}
                for step in lesson.steps
            ],
            "previous": ordered[index - 1] if index > 0 else None,
            "next": ordered[index + 1] if index + 1 < len(ordered) else None,
        },
    )
