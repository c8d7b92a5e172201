from __future__ import annotations

import json

from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from scalelab.limits import LimitError, throttle
from simulations.engines import get_engine
from simulations.engines.base import EngineError, Param
from simulations.runs.constants import limits
from simulations.runs.lifecycle import visitor_live_run
from simulations.validation import (
    Among,
    MediaTypeError,
    Object,
    Scalar,
    Spec,
    json_body,
    validate,
)
from simulations.views import visitor_id

from . import classes
from .models import Lesson, Module, Question, Step, Term
from .progress import (
    PredictionError,
    overview,
    progress_mark_seen,
    progress_measure,
    progress_merge,
    progress_of,
    progress_pass,
    progress_predict,
)
from .services import (
    lesson_to_dict,
    question_as_dict,
    question_draw,
    question_seed,
    render_markdown,
)


def lesson_page_context(
    data: dict, *, who: str, lesson: Lesson | None = None, preview: bool = False
) -> dict:
    """Return what the lesson template needs from a canonical lesson (saved or not),
    its questions' figures drawn for ``who`` (a visitor's id)."""
    questions = [
        question_draw(q, question_seed(who, data["slug"], i))
        for i, q in enumerate(data["questions"])
    ]
    engine = get_engine(data["engine"])
    terms = {t.slug: t for t in Term.objects.filter(slug__in=data["glossary"])}
    published = Lesson.objects.filter(status=Lesson.Status.PUBLISHED).select_related(
        "module"
    )
    ordered = list(published)
    index = next(
        (i for i, item in enumerate(ordered) if item.slug == data["slug"]), None
    )
    return {
        "lesson": data,
        "saved": lesson,
        "preview": preview,
        "module_title": data["module_title"],
        "body": render_markdown(data["body"]),
        "engine": engine,
        "describe": engine.describe(),
        "preset": data["preset"],
        "steps": [_step_context(step, engine) for step in data["steps"]],
        "questions": questions,
        "answers_json": json.dumps(questions) if preview else "",
        "terms": [terms[slug] for slug in data["glossary"] if slug in terms],
        "previous": ordered[index - 1] if index else None,
        "next": ordered[index + 1]
        if index is not None and index + 1 < len(ordered)
        else None,
    }


def _step_context(step: dict, engine) -> dict:
    ask = prediction_of(step, engine) if step["prediction"] else None
    return {
        **step,
        "actions_json": json.dumps(step["actions"]),
        "ask": ask,
        "prediction_json": json.dumps(ask) if ask else "",
    }


def prediction_of(step: dict, engine) -> dict:
    """Return what the page needs to ask a step's prediction and read its figure."""
    metric = next(m for m in engine.metric_specs if m.name == step["measure"])
    last = max((a.get("after", 0) for a in step["actions"]), default=0)
    return {
        "kind": step["prediction"],
        "choices": step["choices"],
        "measure": metric.name,
        "label": metric.label,
        "unit": metric.unit,
        # Simulated seconds from the press to the reading of the figure.
        "reveal_after": last + step["settle"],
    }


@require_GET
def lesson_index(request):
    modules = Module.objects.prefetch_related("lessons")
    groups = [
        (m, [item for item in m.lessons.all() if item.published]) for m in modules
    ]
    progress = progress_of(request)
    return render(
        request,
        "lessons/index.html",
        {
            "groups": [g for g in groups if g[1]],
            "progress": progress,
            "resume": overview(request)["resume"] if progress else None,
        },
    )


@require_GET
@ensure_csrf_cookie
def lesson_detail(request, slug):
    lesson = get_object_or_404(
        Lesson.objects.select_related("module"),
        slug=slug,
        status=Lesson.Status.PUBLISHED,
    )
    who = visitor_id(request)
    progress_mark_seen(request, lesson)
    context = lesson_page_context(lesson_to_dict(lesson), who=who, lesson=lesson)
    mine = progress_of(request).get(slug, {})
    context["passed"] = mine.get("passed", set())
    predicted = mine.get("predictions", {})
    for order, step in enumerate(context["steps"]):
        if step["prediction"] and order in predicted:
            step["predicted_json"] = json.dumps(predicted[order])
    context["live_run"] = visitor_live_run(
        request.user, request.session.get("visitor", ""), context["engine"].kind, slug
    )
    context["classroom"] = classroom_context(request, lesson)
    context["can_teach"] = classes.is_instructor(request.user)
    return render(request, "lessons/detail.html", context)


def classroom_context(request, lesson: Lesson) -> dict | None:
    """The class this page is opened in (``?class=CODE``), and the visitor's role."""
    code = request.GET.get("class", "")
    if not code:
        return None
    try:
        session = classes.class_live(code)
    except classes.ClassError as exc:
        return {"error": exc.message}
    if session.lesson_id != lesson.pk:
        return {"error": "this class follows another lesson", "lesson": session.lesson}
    if request.user.is_authenticated and request.user.pk == session.teacher_id:
        role = "teacher"
    elif request.session.get(f"class:{session.code}"):
        role = "student"
    else:
        return {"error": "join the class first", "join": True, "code": session.code}
    return {
        "code": session.code,
        "role": role,
        "join_url": request.build_absolute_uri(f"/join/{session.code}/"),
        "steps": [
            {"index": s.order, "title": s.title, "poll": bool(s.prediction)}
            for s in lesson.steps.order_by("order")
        ],
        # What the class is asked, never the answers (those come once closed).
        "questions": [
            {
                "index": i,
                "kind": q.kind,
                "prompt": classes.class_question(session, q)["prompt"],
                "choices": [c.get("text", "") for c in q.choices],
                "unit": q.unit,
            }
            for i, q in enumerate(lesson.questions.all())
        ],
    }


@require_GET
@ensure_csrf_cookie
def lesson_preview(request, slug, token):
    """A draft's private link: whoever has it sees the lesson as students will."""
    lesson = get_object_or_404(Lesson.objects.select_related("module"), slug=slug)
    if not constant_time_compare(token, lesson.preview_token):
        raise Http404("no such preview")
    who = visitor_id(request)
    response = render(
        request,
        "lessons/detail.html",
        lesson_page_context(
            lesson_to_dict(lesson), who=who, lesson=lesson, preview=True
        ),
    )
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def choice_or_number(choices: int | None, label: str) -> Object:
    """Return a body that is a choice's index (of ``choices``), or a number if None."""
    if choices is not None:
        field: Spec = Among("choice", tuple(range(choices)))
    else:
        field = Scalar(Param("value", "float", None))
    return Object("body", (field,), required=(field.name,), label=label)


def answer_declaration(question: Question) -> Object:
    """Return what an answer to ``question`` must be: a choice's index, or a number."""
    choice = question.kind == Question.Kind.CHOICE
    return choice_or_number(len(question.choices) if choice else None, "the answer")


def grade(question: Question, answer: dict, seed: str) -> dict:
    """Grade an answer checked against ``answer_declaration(question)``, a drawn
    question with the figures ``seed`` draws (those its page showed)."""
    if question.kind == Question.Kind.CHOICE:
        picked = question.choices[answer["choice"]]
        right = next(i for i, c in enumerate(question.choices) if c["correct"])
        return {
            "correct": picked["correct"],
            "why": picked["why"],
            "right": right,
            "explain": question.explain,
        }
    drawn = question_draw(question_as_dict(question), seed)
    return {
        "correct": abs(answer["value"] - drawn["answer"]) <= drawn["tolerance"],
        "answer": drawn["answer"],
        "shown": drawn["shown"],
        "tolerance": drawn["tolerance"],
        "unit": drawn["unit"],
        "explain": drawn["explain"],
    }


@require_POST
def answer(request, slug, index):
    lesson = get_object_or_404(Lesson, slug=slug, status=Lesson.Status.PUBLISHED)
    question = lesson.questions.filter(order=index).first()
    if question is None:
        return JsonResponse(
            {"errors": {"question": f"this lesson has no question {index}"}}, status=404
        )
    try:
        body = validate(answer_declaration(question), json_body(request))
    except EngineError as exc:
        return refusal(exc)
    result = grade(question, body, question_seed(visitor_id(request), slug, index))
    if result["correct"]:
        progress_pass(request, lesson, index)
    return JsonResponse(result)


def refusal(exc: EngineError | PredictionError, status: int = 400) -> JsonResponse:
    """Answer a refused body naming its field: 415 for one not sent as JSON."""
    if isinstance(exc, MediaTypeError):
        status = 415
    return JsonResponse({"errors": {exc.field: exc.message}}, status=status)


def _published_step(slug: str, index: int) -> tuple[Lesson, Step | None]:
    lesson = get_object_or_404(Lesson, slug=slug, status=Lesson.Status.PUBLISHED)
    return lesson, lesson.steps.filter(order=index).first()


def prediction_declaration(step: Step) -> Object:
    """Return what a prediction for ``step`` must be: a choice's index, or a number."""
    choice = step.prediction == Step.Prediction.CHOICE
    return choice_or_number(len(step.choices) if choice else None, "the prediction")


MEASURED = Object(
    "body",
    (
        Scalar(Param("after", "float", None)),
        Scalar(Param("before", "float", None)),
        Scalar(Param("t", "float", None, min=0)),
    ),
    required=("after",),
    label="the measured figure",
)


def _record_step(request, slug, index, declaration, record) -> JsonResponse:
    """Check a POST about a published step's prediction and record it."""
    lesson, step = _published_step(slug, index)
    if step is None or not step.prediction:
        return JsonResponse(
            {"errors": {"step": f"this lesson has no step {index} to predict"}},
            status=404,
        )
    try:
        body = validate(declaration(step), json_body(request))
        entry = record(request, lesson, index, body)
    except EngineError as exc:
        return refusal(exc)
    except PredictionError as exc:
        return refusal(exc, status=409)
    return JsonResponse({"prediction": entry})


@require_POST
def predict(request, slug, index):
    """Record a step's prediction, made before the step is played."""
    return _record_step(request, slug, index, prediction_declaration, progress_predict)


@require_POST
def measured(request, slug, index):
    """Record the figure a step's run measured, shown beside its prediction."""
    return _record_step(request, slug, index, lambda step: MEASURED, progress_measure)


@require_GET
def glossary(request):
    terms = Term.objects.all()
    users: dict[str, list[Lesson]] = {}
    for lesson in Lesson.objects.filter(status=Lesson.Status.PUBLISHED):
        for slug in lesson.glossary:
            users.setdefault(slug, []).append(lesson)
    # By first letter, for the row of letters that jumps to each group.
    groups: dict[str, list[tuple[Term, list[Lesson]]]] = {}
    for t in terms:
        letter = t.term[:1].upper() if t.term[:1].isalpha() else "#"
        groups.setdefault(letter, []).append((t, users.get(t.slug, [])))
    return render(request, "lessons/glossary.html", {"groups": list(groups.items())})


@require_GET
def search(request):
    query = request.GET.get("q", "").strip()[:100]
    results = []
    if query:
        published = Lesson.objects.filter(
            status=Lesson.Status.PUBLISHED
        ).select_related("module")
        words = query.split()
        match = Q()
        for word in words:
            match &= (
                Q(title__icontains=word)
                | Q(summary__icontains=word)
                | Q(body__icontains=word)
            )
        found = list(published.filter(match))
        lowered = query.lower()
        found.sort(
            key=lambda item: (
                lowered not in item.title.lower(),
                lowered not in item.summary.lower(),
                item.module.order,
                item.order,
            )
        )
        results = found
        terms = list(
            Term.objects.filter(
                Q(term__icontains=query) | Q(definition__icontains=query)
            )
        )
    else:
        terms = []
    return render(
        request,
        "lessons/search.html",
        {"query": query, "results": results, "terms": terms},
    )


@require_GET
def progress_view(request):
    return render(request, "lessons/progress.html", overview(request))


def _came_from(request) -> str:
    """The page to go back to after signing in or up, if it is one of this site's."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else ""


def _limited_form(request, template: str, form, group: str, rate: str, what: str):
    """Count a form post from this address; a page saying why if over ``rate``.

    The refused form is not checked at all: a sign-in refused here tries no password.
    """
    try:
        throttle(request, group, rate, field="form", what=what)
    except LimitError as exc:
        context = {"form": form, "limited": exc.message, "next": _came_from(request)}
        response = render(request, template, context, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    return None


class SignInView(LoginView):
    """Sign in, bringing along the progress made as an anonymous visitor.

    Django keeps an anonymous session's data when it signs the visitor in, so the
    progress is still there to merge.
    """

    template_name = "registration/login.html"
    next_page = "lesson-index"  # when the visitor came from no page of the site

    def post(self, request, *args, **kwargs):
        refused = _limited_form(
            request,
            self.template_name,
            self.get_form_class()(request),
            "accounts.signin",
            f"{limits()['ADDRESS_SIGNINS_PER_MIN']}/m",
            "sign-in attempts",
        )
        return refused or super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        progress_merge(self.request.session, self.request.user)
        return response


@require_http_methods(["GET", "POST"])
def sign_up(request):
    template = "registration/signup.html"
    if request.method == "POST":
        refused = _limited_form(
            request,
            template,
            UserCreationForm(),
            "accounts.signup",
            f"{limits()['ADDRESS_SIGNUPS_PER_H']}/h",
            "new accounts",
        )
        if refused:
            return refused
    form = UserCreationForm(request.POST or None)
    came_from = _came_from(request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        progress_merge(request.session, user)
        return redirect(came_from or "lesson-index")
    return render(request, template, {"form": form, "next": came_from})
