from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse


def _token() -> str:
    return secrets.token_urlsafe(18)


class Module(models.Model):
    """A group of lessons, in the order the ideas build on each other."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


class Lesson(models.Model):
    """One idea, explained beside a live simulation of it."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="lessons")
    order = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=300, blank=True)
    objectives = models.JSONField(
        default=list, blank=True, help_text="What a student can do afterwards."
    )
    topics = models.JSONField(
        default=list, blank=True, help_text="Topics of the study notes it covers."
    )
    glossary = models.JSONField(
        default=list, blank=True, help_text="Glossary terms (slugs) it uses."
    )
    body = models.TextField(help_text="Markdown. Inline SVG diagrams are kept.")
    engine = models.CharField(max_length=40, help_text="The simulation engine's kind.")
    preset = models.JSONField(default=dict, blank=True, help_text="Engine parameters.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    preview_token = models.CharField(max_length=40, default=_token, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["module__order", "order", "slug"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        # A draft's preview link shows every correct answer, and it may have gone
        # round a class: it stops working when the lesson is published, whichever
        # way that happens (the form, the Publish action, an import, a revert).
        update_fields = kwargs.get("update_fields")
        saves_status = update_fields is None or "status" in update_fields
        if self.published and self.pk is not None and saves_status:
            stored = Lesson.objects.filter(pk=self.pk).values_list("status", flat=True)
            if stored.first() == self.Status.DRAFT:
                self.preview_token = _token()
                if update_fields is not None:
                    kwargs["update_fields"] = {*update_fields, "preview_token"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("lesson", args=[self.slug])

    @property
    def published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def preview_url(self) -> str:
        return reverse("lesson-preview", args=[self.slug, self.preview_token])


class Step(models.Model):
    """A guided step: predict, then act (its actions may be timed), then explain."""

    class Prediction(models.TextChoices):
        NONE = "", "No prediction"
        NUMBER = "number", "A number (in the measured figure's unit)"
        CHOICE = "choice", "One of the choices"

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200)
    predict = models.TextField(
        blank=True, help_text="The question the student answers before acting."
    )
    text = models.TextField(blank=True, help_text="What to do.")
    button = models.CharField(
        max_length=60,
        blank=True,
        help_text="Label of the button that plays the actions.",
    )
    actions = models.JSONField(
        default=list,
        blank=True,
        help_text='A list of {"command": NAME, "args": {...}} or {"set": {PARAM: VALUE}}, '
        'each with an optional "after" in simulated seconds.',
    )
    explain = models.TextField(
        blank=True,
        help_text="What happened, and why: shown on request, or after the step ran "
        "when it asks for a prediction.",
    )
    prediction = models.CharField(
        max_length=10,
        choices=Prediction.choices,
        default=Prediction.NONE,
        blank=True,
        help_text="What the student answers before the step can be played.",
    )
    choices = models.JSONField(
        default=list, blank=True, help_text="For a choice prediction: its choices."
    )
    measure = models.CharField(
        max_length=60,
        blank=True,
        help_text="The engine's figure shown beside the prediction once the step ran.",
    )
    settle = models.FloatField(
        default=0,
        help_text="Simulated seconds after the step's last action before the figure "
        "is read and the explanation opens.",
    )

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title


class Question(models.Model):
    """A checkpoint question: choices with exactly one right answer, or a number."""

    class Kind(models.TextChoices):
        CHOICE = "choice", "Multiple choice"
        NUMBER = "number", "Number"

    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="questions"
    )
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHOICE)
    prompt = models.TextField()
    choices = models.JSONField(
        default=list, blank=True, help_text='[{"text", "correct", "why"}, ...]'
    )
    answer = models.FloatField(null=True, blank=True, help_text="For number questions.")
    formula = models.CharField(
        max_length=300,
        blank=True,
        help_text="For drawn number questions: the answer as a formula of the params.",
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="Figures drawn for each student: {name: {min, max, step} or {choices}}.",
    )
    tolerance = models.FloatField(
        default=0, help_text="For number questions: accepted distance from the answer."
    )
    relative = models.BooleanField(
        default=False, help_text="The tolerance is a percentage of the answer."
    )
    unit = models.CharField(max_length=30, blank=True)
    explain = models.TextField(blank=True, help_text="Shown after any answer.")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.prompt[:80]


class LessonVersion(models.Model):
    """A saved state of a lesson, in its file format; kept even if the lesson is deleted."""

    lesson = models.ForeignKey(
        Lesson, null=True, on_delete=models.SET_NULL, related_name="versions"
    )
    slug = models.SlugField()
    text = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.slug} at {self.created_at:%Y-%m-%d %H:%M}"


class Term(models.Model):
    """A glossary entry, linked from the lessons that use it."""

    slug = models.SlugField(unique=True)
    term = models.CharField(max_length=100)
    definition = models.TextField()

    class Meta:
        ordering = ["term"]

    def __str__(self) -> str:
        return self.term

    def get_absolute_url(self) -> str:
        return reverse("glossary") + f"#{self.slug}"


class Progress(models.Model):
    """A signed-in student's progress in one lesson (anonymous visitors keep it in the session)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="progress"
    )
    lesson = models.ForeignKey(
        Lesson, on_delete=models.CASCADE, related_name="progress"
    )
    seen_at = models.DateTimeField()
    passed = models.JSONField(
        default=list, blank=True, help_text="Orders of the questions answered right."
    )
    predictions = models.JSONField(
        default=dict,
        blank=True,
        help_text="By step order: the prediction made and the figure measured.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "lesson"], name="one_progress_per_lesson"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.lesson}"


class ClassSession(models.Model):
    """A class following one lesson together: a join code, a shared run, polls.

    Everything a session is lives in these rows, so any number of web processes can
    serve one class; ``version`` counts the changes, and each process's watcher of
    a session (``lessons.classes``) sends the new state when it moves.
    """

    class Mode(models.TextChoices):
        TEACHER = "teacher", "Teacher-paced"
        STUDENT = "student", "Student-paced"

    class Poll(models.TextChoices):
        NONE = "", "No poll"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        REVEALED = "revealed", "Revealed"

    code = models.CharField(max_length=8, unique=True)
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="classes")
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classes"
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.TEACHER)
    step = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The teacher's step (as numbered from 0), if any.",
    )
    paused = models.BooleanField(default=False, help_text="Pause all: heads up.")
    poll_step = models.PositiveIntegerField(null=True, blank=True)
    poll = models.CharField(
        max_length=10, choices=Poll.choices, default=Poll.NONE, blank=True
    )
    run = models.ForeignKey(
        "simulations.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    question = models.PositiveIntegerField(
        null=True, blank=True, help_text="The checkpoint question pushed, if any."
    )
    question_state = models.CharField(
        max_length=10, choices=Poll.choices, default=Poll.NONE, blank=True
    )
    measured = models.JSONField(
        default=dict,
        blank=True,
        help_text="By step number: the figure the shared run measured for it.",
    )
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"class {self.code} ({self.lesson})"


class ClassMember(models.Model):
    """A student in a class: known by the browser's visitor id, named or not."""

    session = models.ForeignKey(
        ClassSession, on_delete=models.CASCADE, related_name="members"
    )
    visitor = models.CharField(max_length=64)
    name = models.CharField(max_length=40, blank=True)
    step = models.PositiveIntegerField(
        default=0, help_text="Where they are, student-paced."
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    moved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "visitor"], name="class_member_once"
            )
        ]

    def __str__(self) -> str:
        return self.name or f"student {self.pk}"


class ClassAnswer(models.Model):
    """A member's answer to a step's prediction or a checkpoint question.

    One per member and item: the last answer wins.
    """

    class Kind(models.TextChoices):
        STEP = "step", "Step prediction"
        QUESTION = "question", "Checkpoint question"

    session = models.ForeignKey(
        ClassSession, on_delete=models.CASCADE, related_name="answers"
    )
    member = models.ForeignKey(
        ClassMember, on_delete=models.CASCADE, related_name="answers"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STEP)
    step = models.PositiveIntegerField(
        help_text="The step's number, or the question's."
    )
    choice = models.IntegerField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    answered_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "member", "kind", "step"],
                name="class_answer_once_each",
            )
        ]
        indexes = [models.Index(fields=["session", "kind", "step"])]

    def __str__(self) -> str:
        return f"{self.member} on {self.kind} {self.step}"
