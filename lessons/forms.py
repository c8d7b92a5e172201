"""Admin forms for authoring lessons.

The forms turn what an author typed into the lesson's canonical data and check it
with the same validators the lesson files go through (``lessons.services``), so
the admin accepts exactly what a lesson file may hold, with errors naming the field.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.forms.formsets import DELETION_FIELD_NAME
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from simulations.engines import REGISTRY, kinds
from simulations.engines.base import Engine, EngineError, Param

from .authoring import SOURCE, error_text, preset_from_values, version_label
from .models import Lesson, Question, Step, Term
from .services import (
    STEP_FIELDS,
    LessonChanges,
    LessonFileError,
    lesson_changes_since,
    params_to_text,
    question_as_dict,
    question_columns,
    validate_action,
    validate_lesson,
    validate_question,
    validate_step,
    version_latest_id,
)
from .widgets import ActionsWidget

PRESET_PREFIX = "preset_"
# "actions[2].write_burst.writes" in a step's error: the action and what in it.
ACTION_PATH = re.compile(r"actions\[(\d+)\](?:\.(.*))?$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise_text(value: str) -> str:
    """Use \\n line ends (browsers post \\r\\n) so lesson files stay clean."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


class Textarea(forms.Textarea):
    """A textarea whose posted value has \n line ends, so unchanged text is unchanged."""

    def value_from_datadict(self, data, files, name):
        value = super().value_from_datadict(data, files, name)
        return normalise_text(value) if isinstance(value, str) else value


class CleanTextMixin:
    """Normalise line ends and refuse control characters in every text field."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, str):
                value = normalise_text(value)
                if CONTROL.search(value):
                    self.add_error(name, "must not contain control characters")
                    continue
                cleaned[name] = value
        return cleaned


# Fields ---------------------------------------------------------------------------


class LinesField(forms.CharField):
    """A list of texts, one per line."""

    widget = Textarea(attrs={"rows": 3})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        lines = [line.strip() for line in text.splitlines()]
        for line in lines:
            if CONTROL.search(line):
                raise ValidationError("must not contain control characters")
        return [line for line in lines if line]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _split_choice(line: str) -> tuple[str, str | None]:
    """Split "text | why" at the first unescaped bar; unescape the text."""
    text = []
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] in "\\|":
            text.append(line[i + 1])
            i += 2
            continue
        if char == "|":
            return "".join(text).strip(), line[i + 1 :].strip()
        text.append(char)
        i += 1
    return "".join(text).strip(), None


def choices_to_text(choices: list[dict[str, Any]]) -> str:
    """Write choices one per line: ``* right | why`` or ``- wrong | why``.

    A reason may go on over more lines, each indented by two spaces.
    """
    lines = []
    for choice in choices:
        why = (choice.get("why") or "").split("\n")
        mark = "*" if choice.get("correct") else "-"
        lines.append(f"{mark} {_escape(choice.get('text', ''))} | {why[0]}")
        lines += ["  " + more if more else "" for more in why[1:]]
    return "\n".join(lines)


def choices_from_text(text: str) -> list[dict[str, Any]]:
    """Read choices written by ``choices_to_text``; raise ValidationError naming the line."""
    choices: list[dict[str, Any]] = []
    why_lines: list[list[str]] = []
    for number, line in enumerate(normalise_text(text).split("\n"), start=1):
        if line[:1] in ("*", "-"):
            body, why = _split_choice(line[1:])
            if why is None:
                raise ValidationError(
                    f"line {number}: add ' | ' and then why this answer is "
                    "right or wrong"
                )
            choices.append({"text": body, "correct": line[0] == "*", "why": why})
            why_lines.append([why])
        elif choices and (line.startswith("  ") or not line.strip()):
            why_lines[-1].append(line[2:])
        else:
            raise ValidationError(
                f"line {number}: start a choice with '* ' for the right answer or "
                "'- ' for a wrong one (a reason may go on over lines indented by "
                "two spaces)"
            )
    for choice, lines in zip(choices, why_lines):
        choice["why"] = "\n".join(lines).strip()
    return choices


class LinesOfDataField(forms.CharField):
    """Data (a list or a table) written as lines of text for an author to edit."""

    widget = Textarea(attrs={"rows": 4, "class": "monospace"})
    empty: type = list
    help = ""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", self.help)
        super().__init__(strip=False, **kwargs)

    def to_text(self, value) -> str:
        raise NotImplementedError

    def from_text(self, text: str):
        raise NotImplementedError

    def prepare_value(self, value):
        if isinstance(value, self.empty):
            return self.to_text(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return self.from_text(text) if text.strip() else self.empty()

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or self.empty())
        except ValidationError:
            return True


class ChoiceLinesField(LinesOfDataField):
    """Choices of a question, one per line, instead of raw JSON."""

    help = (
        "One choice per line: <code>* right answer | why it is right</code> or "
        "<code>- wrong answer | why it is wrong</code>. Exactly one starts with *. "
        "Write <code>\\|</code> for a bar inside an answer."
    )
    to_text = staticmethod(choices_to_text)
    from_text = staticmethod(choices_from_text)


class ActionsField(forms.JSONField):
    """A step's timed actions: rows picked from the engine, or JSON without JS."""

    widget = ActionsWidget

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The lesson's engine (set by the step form), to tell an unchanged step.
        self.engine: type[Engine] | None = None

    def prepare_value(self, value):
        if isinstance(value, list) and value:
            items = ",\n".join(
                "  " + json.dumps(item, ensure_ascii=False) for item in value
            )
            return "[\n" + items + "\n]"
        if value == [] or value is None:
            return ""
        return super().prepare_value(value)

    def bound_data(self, data, initial):
        # Rows arrive already as a list; only the textarea's text is JSON.
        return data if isinstance(data, list) else super().bound_data(data, initial)

    def to_python(self, value):
        result = super().to_python(value)
        return [] if result is None else result

    def has_changed(self, initial, data):
        # Rows post their values as text: compare what validation makes of them.
        try:
            value = self.to_python(data)
            if self.engine is not None and isinstance(value, list):
                value = [
                    validate_action(action, "actions", self.engine, SOURCE)
                    for action in value
                ]
        except (ValidationError, LessonFileError):
            return True
        return value != (initial or [])


def param_field(param: Param) -> forms.Field:
    """Return the form field for one declared engine parameter."""
    described = param.describe()
    label = described["label"] + (f" ({param.unit})" if param.unit else "")
    default = described["default"]
    if param.type == "bool":
        default = "yes" if default else "no"
    elif param.type == "float":
        default = f"{default:g}"
    help_text = " ".join(
        part
        for part in (
            param.help.rstrip(".") + "." if param.help else "",
            f"Allowed: {param.allowed()}.",
            f"Default: {default}.",
        )
        if part
    )
    message = f"{param.name} must be {param.allowed()}"
    errors = dict.fromkeys(
        ("invalid", "min_value", "max_value", "invalid_choice", "step_size"), message
    )
    common = {
        "label": label,
        "help_text": help_text,
        "required": False,
        "error_messages": errors,
    }
    if param.type == "int":
        return forms.IntegerField(
            min_value=int(param.min) if param.min is not None else None,
            max_value=int(param.max) if param.max is not None else None,
            **common,
        )
    if param.type == "float":
        return forms.FloatField(min_value=param.min, max_value=param.max, **common)
    if param.type == "choice":
        return forms.ChoiceField(choices=[(c, c) for c in param.choices], **common)
    return forms.BooleanField(**common)


def engine_choices() -> list[tuple[str, str]]:
    return [("", "---------")] + [(k, f"{REGISTRY[k].title} ({k})") for k in kinds()]


# The lesson -------------------------------------------------------------------------

# Where a lesson-level error is shown, by the field it names in the file format.
_FORM_FIELD = {"module_title": "module", "module_order": "module"}
# How many of the saves made since a form was opened its refusal names.
_SAVES_NAMED = 3


def stale_message(lesson: Lesson, base: int, changes: LessonChanges, user=None):
    """Say who saved the lesson since version ``base`` was opened, and what changed."""
    saves = []
    for version in reversed(changes.versions[-_SAVES_NAMED:]):
        if version.author is None:
            who = "someone"
        elif user is not None and version.author_id == user.pk:
            who = "you (in another tab or window)"
        else:
            who = version.author.get_username()
        note = f" ({version.note})" if version.note else ""
        saves.append((who, version_label(version), note))
    earlier = len(changes.versions) - len(saves)
    fields = ", ".join(changes.fields)
    history = reverse("admin:lessons_lesson_versions", args=[lesson.slug])
    return format_html(
        "Not saved: the lesson was saved again since you opened this form, and "
        "saving it would undo those changes. Saved since: {}{}. {} Your edits "
        "are still in the form below: copy what you need, reload the lesson to "
        "see its current version, then make your edits again. "
        '<a href="{}" target="_blank" rel="noopener">See what changed</a> '
        "(its history, in a new tab).",
        format_html_join("; ", "by {} at {}{}", saves),
        f"; and {earlier} earlier save(s)" if earlier else "",
        f"Changed since: {fields}." if fields else "",
        f"{history}#version-{base}" if base else history,
    )


class LessonForm(CleanTextMixin, forms.ModelForm):
    """The lesson without its steps and questions; ``lesson_form_for`` adds the preset."""

    engine_class: ClassVar[type[Engine] | None] = None
    # Who edits (set by ``lesson_form_for``), so a refusal can tell them apart.
    editor: ClassVar[Any] = None

    engine = forms.ChoiceField(
        choices=engine_choices,
        help_text="The simulation beside the lesson. Its parameters follow below.",
    )
    body = forms.CharField(
        strip=False,
        widget=Textarea(
            attrs={"rows": 26, "class": "markdown-editor", "spellcheck": "true"}
        ),
        help_text="Markdown. Inline SVG diagrams are kept; scripts and classes are "
        "removed, and ids get the prefix lesson-text- (links to #an-id follow).",
    )
    objectives = LinesField(help_text="What a student can do afterwards; one per line.")
    topics = LinesField(help_text="Topics of the study notes it covers; one per line.")
    glossary = LinesField(
        help_text="Slugs of glossary terms it uses, one per line (see Terms)."
    )
    # The lesson's latest version when the form was opened: a save based on an
    # older one would silently undo whatever was saved in between.
    base_version = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Lesson
        fields = [
            "title",
            "slug",
            "module",
            "order",
            "status",
            "summary",
            "body",
            "objectives",
            "topics",
            "glossary",
            "engine",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["base_version"].initial = str(version_latest_id(self.instance))
        engine = self.engine_class
        if engine is None:
            return
        current = self.instance.preset if self.instance.engine == engine.kind else {}
        for param in engine.params:
            name = PRESET_PREFIX + param.name
            self.fields[name].initial = current.get(param.name, param.default)
            self.fields[name].widget.attrs["data-param"] = param.name

    def clean_body(self):
        body = normalise_text(self.cleaned_data["body"])
        if not body.strip():
            raise ValidationError("This field is required.")
        # The file format keeps a body without blank lines around it, ending in \n.
        return body.strip("\n") + "\n"

    def clean_glossary(self):
        slugs = self.cleaned_data["glossary"]
        known = set(Term.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        missing = [slug for slug in slugs if slug not in known]
        if missing:
            raise ValidationError(
                f"no term {missing[0]!r} in the glossary; add it under Terms first"
            )
        return slugs

    def clean(self):
        cleaned = super().clean()
        self._check_up_to_date()
        engine = self.engine_class
        if engine is None or cleaned.get("engine") != engine.kind:
            # The engine field has its own error (unknown or missing).
            return cleaned
        values = {
            p.name: cleaned.get(PRESET_PREFIX + p.name)
            for p in engine.params
            if PRESET_PREFIX + p.name not in self.errors
        }
        values = {
            name: None if value == "" else value for name, value in values.items()
        }
        previous = self.instance.preset if self.instance.engine == engine.kind else {}
        try:
            preset = preset_from_values(engine, values, previous)
        except EngineError as exc:
            target = PRESET_PREFIX + exc.field
            self.add_error(target if target in self.fields else None, exc.message)
            return cleaned
        self.instance.preset = preset
        if not self.errors:
            self._check_as_file(cleaned, preset)
        return cleaned

    def _check_up_to_date(self) -> None:
        lesson = self.instance
        if lesson.pk is None:
            return
        # Its own error would sit on a hidden field, which the admin never shows.
        base = self.cleaned_data.get("base_version", "")
        if not re.fullmatch(r"[0-9]{1,18}", base):
            self.add_error(
                None,
                "Not saved: this form does not say which version of the lesson it "
                "was opened on. Reload the lesson, then make your edits again.",
            )
            return
        changes = lesson_changes_since(lesson, int(base))
        if changes is not None:
            message = stale_message(lesson, int(base), changes, self.editor)
            self.add_error(None, ValidationError(message, code="stale"))

    def _check_as_file(self, cleaned: dict[str, Any], preset: dict[str, Any]) -> None:
        try:
            validate_lesson(
                lesson_fields(cleaned, preset) | {"steps": [], "questions": []},
                SOURCE,
            )
        except LessonFileError as exc:
            name = exc.field.split(".")[0]
            name = _FORM_FIELD.get(name, name)
            if exc.field.startswith("preset."):
                name = PRESET_PREFIX + exc.field.split(".", 1)[1]
            self.add_error(name if name in self.fields else None, error_text(exc))


def lesson_form_for(kind: str | None, *, editor=None) -> type[LessonForm]:
    """Return the lesson form with one field per parameter of engine ``kind``."""
    engine = REGISTRY.get(kind or "")
    attrs: dict[str, Any] = {"editor": editor}
    if engine is None:
        return type("LessonForm", (LessonForm,), attrs)
    attrs |= {PRESET_PREFIX + p.name: param_field(p) for p in engine.params}
    attrs["engine_class"] = engine
    return type(f"LessonForm_{engine.kind}", (LessonForm,), attrs)


def lesson_fields(cleaned: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """Return the lesson-level part of the canonical data from a clean lesson form."""
    module = cleaned["module"]
    return {
        "slug": cleaned["slug"],
        "title": cleaned["title"],
        "module": module.slug,
        "module_title": module.title,
        "module_order": module.order,
        "order": cleaned["order"],
        "status": cleaned["status"],
        "summary": cleaned.get("summary", ""),
        "engine": cleaned["engine"],
        "topics": cleaned.get("topics", []),
        "objectives": cleaned.get("objectives", []),
        "glossary": cleaned.get("glossary", []),
        "preset": preset,
        "body": cleaned["body"],
    }


# Steps and questions -------------------------------------------------------------------


def ordered_forms(formset) -> list[forms.Form]:
    """Return the forms that will be saved, in the lesson's order of its parts."""
    kept = []
    for position, form in enumerate(formset.forms):
        cleaned = getattr(form, "cleaned_data", {})
        if formset.can_delete and cleaned.get(DELETION_FIELD_NAME):
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        order = cleaned.get("order")
        new = form.instance.pk is None
        kept.append(((order or 0, new, form.instance.pk or 0, position), form))
    return [form for _, form in sorted(kept, key=lambda item: item[0])]


def _inline_field(where: str, path: str) -> str:
    """Map "steps[2].actions[0].x" to the inline form's field ("actions")."""
    rest = path[len(where) :] if path.startswith(where) else ""
    return re.split(r"[.\[]", rest, maxsplit=1)[0]


class StepForm(CleanTextMixin, forms.ModelForm):
    actions = ActionsField(
        required=False,
        help_text="Played in order when the student presses the step's button: "
        "run one of the engine's commands or change its settings, each at once or "
        "after some simulated seconds. Checked against the lesson's engine.",
    )

    choices = LinesField(
        label="Prediction choices",
        help_text="For a choice prediction: one choice per line, 2 to 6.",
    )
    settle = forms.FloatField(
        required=False,
        initial=0,
        label="Settle (simulated seconds)",
        help_text="After the step's last action, before the figure is read and the "
        "explanation opens.",
    )
    measure = forms.ChoiceField(
        required=False,
        label="Figure measured",
        help_text="Read from the student's run once the step has played, and shown "
        "beside their prediction.",
    )

    def __init__(self, *args, engine: type[Engine] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions"].engine = engine
        self.fields["actions"].widget.row_errors = []
        if engine is None:
            # A lesson not saved yet has no engine to list figures from: the name is
            # typed, and checked against the engine when the lesson is.
            self.fields["measure"] = forms.CharField(
                required=False,
                label=self.fields["measure"].label,
                help_text=self.fields["measure"].help_text,
            )
            return
        figures = [(m.name, f"{m.label} ({m.name})") for m in engine.metric_specs]
        current = self.initial.get("measure") or ""
        if current and current not in dict(figures):
            # Kept so that the step's check can say the figure is not the engine's.
            figures.append((current, current))
        self.fields["measure"].choices = [("", "None"), *figures]

    def add_action_error(
        self, row: int, rest: str | None, exc: LessonFileError
    ) -> None:
        """Show a refused action next to its row and input, naming both."""
        message = error_text(exc)
        if message.startswith(exc.field + ": "):
            message = message[len(exc.field) + 2 :]
        actions = self.cleaned_data.get("actions") or []
        action = actions[row] if row < len(actions) else {}
        # An unnamed command or setting leaves a bare "actions[0]." behind.
        parts = [] if rest is None else rest.split(".", 1)
        target, label = "", ""
        if parts == ["after"]:
            target, label = "after", "after"
        elif parts[:1] == ["set"]:
            name = parts[1] if len(parts) > 1 else ""
            target = f"set:{name}" if name else "set"
            label = f"setting {name}" if name else "settings"
        elif not isinstance(action, dict) or not parts:
            pass
        elif isinstance(action.get("set"), dict) and parts[0] in action["set"]:
            target, label = f"set:{parts[0]}", f"setting {parts[0]}"
        elif "command" in action:
            command = str(action["command"])
            if len(parts) == 2 and parts[0] == command:
                target, label = f"arg:{parts[1]}", f"{command} argument {parts[1]}"
                message = message.removeprefix(command + ": ")
            elif parts == ["args"]:
                target, label = "args", f"{command} arguments"
            elif parts == [command]:
                target, label = "command", "command"
        where = f"Action {row + 1}" + (f", {label}" if label else "")
        widget = self.fields["actions"].widget
        widget.row_errors = [
            *widget.row_errors,
            {"row": row, "field": target, "message": message},
        ]
        self.add_error("actions", f"{where}: {message}")

    class Meta:
        model = Step
        fields = [
            "order",
            "title",
            "predict",
            "prediction",
            "choices",
            "measure",
            "settle",
            "text",
            "button",
            "actions",
            "explain",
        ]
        widgets = {
            "predict": Textarea(attrs={"rows": 2}),
            "prediction": forms.Select(attrs={"class": "prediction-kind"}),
            "text": Textarea(attrs={"rows": 2}),
            "explain": Textarea(attrs={"rows": 3}),
            "order": forms.NumberInput(attrs={"class": "part-order", "min": 0}),
        }


class LessonPartFormSet(forms.BaseInlineFormSet):
    """Steps or questions; a part deleted since the form was opened says so."""

    # The field that names a part in the message when its row is gone.
    label_field = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gone: list[forms.Form] = []

    def get_queryset(self):
        # The admin shows each form beside the row it edits, pairing them in order
        # with the rows that exist: with one gone, every later form would sit beside
        # the wrong row and the last would not be shown at all.
        if self.gone:
            return [form.instance for form in self.initial_forms]
        return super().get_queryset()

    def clean(self):
        super().clean()
        self.clean_parts()
        name = self.model._meta.pk.name
        noun = self.model._meta.verbose_name
        labels = []
        for position, form in enumerate(self.initial_forms, start=1):
            # The part's hidden id names a row that is gone; Django's own error is
            # on that hidden field, which the admin never shows.
            if name in form.errors and not self._should_delete_form(form):
                form.errors.pop(name)
                form.add_error(
                    None,
                    f"This {noun} was deleted by someone else since you opened the "
                    "form: what you typed in it is below, but it cannot be saved.",
                )
                self.gone.append(form)
                label = form.data.get(form.add_prefix(self.label_field), "")
                labels.append(f"#{position} “{label.strip()[:80]}”")
        if labels:
            one = len(labels) == 1
            raise ValidationError(
                f"The {noun}{'' if one else 's'} {', '.join(labels)} "
                f"{'was' if one else 'were'} deleted by someone else since you "
                f"opened the form (or an import or a revert replaced the lesson's "
                f"{noun}s): your edits to {'it' if one else 'them'} are not saved. "
                f"Reload the lesson to see its current {noun}s."
            )

    def clean_parts(self) -> None:
        """Check the parts as a whole (the formset's errors go on its forms)."""


class StepFormSet(LessonPartFormSet):
    """Steps, checked against the lesson's engine (its commands and parameters)."""

    label_field = "title"

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        kwargs["engine"] = REGISTRY.get(self.instance.engine or "")
        return kwargs

    def clean_parts(self):
        engine = REGISTRY.get(self.instance.engine or "")
        if engine is None:
            return
        for index, form in enumerate(ordered_forms(self)):
            if form.errors:
                continue
            step = {name: form.cleaned_data.get(name) or "" for name in STEP_FIELDS}
            step["actions"] = form.cleaned_data.get("actions") or []
            step["choices"] = form.cleaned_data.get("choices") or []
            step["settle"] = form.cleaned_data.get("settle") or 0
            where = f"steps[{index}]."
            try:
                canonical = validate_step(step, index, engine, SOURCE)
            except LessonFileError as exc:
                action = ACTION_PATH.match(exc.field[len(where) :])
                if action:
                    form.add_action_error(int(action[1]), action[2], exc)
                    continue
                name = _inline_field(where, exc.field)
                form.add_error(name if name in form.fields else None, error_text(exc))
                continue
            for name, value in canonical.items():
                setattr(form.instance, name, value)

    def canonical(self) -> list[dict[str, Any]]:
        return [
            {name: getattr(form.instance, name) for name in STEP_FIELDS}
            for form in ordered_forms(self)
        ]


class ParamsField(LinesOfDataField):
    """A drawn question's figures, one per line, as in the file format."""

    widget = Textarea(attrs={"rows": 3, "class": "monospace"})
    empty = dict
    help = (
        "Optional: figures drawn for each student, one per line, as "
        "<code>users = { min = 1000, max = 50000, step = 1000 }</code> or "
        "<code>peak = { choices = [2, 3, 4] }</code>. Show them in the prompt as "
        "<code>{users}</code>; the answer is then a formula such as "
        "<code>users * peak / 86400</code>."
    )
    to_text = staticmethod(params_to_text)

    @staticmethod
    def from_text(text: str) -> dict:
        try:
            return tomllib.loads(normalise_text(text))
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"not one figure per line as shown: {exc}") from None


class QuestionForm(CleanTextMixin, forms.ModelForm):
    choices = ChoiceLinesField()
    # Not the model's columns: a number or a formula, a number or a percentage.
    answer = forms.CharField(
        required=False,
        help_text="For number questions: the answer, or a formula of the figures.",
    )
    tolerance = forms.CharField(
        required=False,
        initial="0",
        help_text="For number questions: accepted distance from the answer, or a "
        'percentage of it ("5%").',
    )
    params = ParamsField()

    class Meta:
        model = Question
        fields = ["order", "kind", "prompt", "choices", "params", "unit", "explain"]
        # The admin lists every field of the form; these columns are set from the
        # checked question (``question_columns``), never straight from the text.
        exclude = ["answer", "formula", "tolerance", "relative"]  # noqa: DJ006
        widgets = {
            "prompt": Textarea(attrs={"rows": 2}),
            "explain": Textarea(attrs={"rows": 2}),
            "order": forms.NumberInput(attrs={"class": "part-order", "min": 0}),
            "kind": forms.Select(attrs={"class": "question-kind"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        question = self.instance
        if question.pk and question.kind == Question.Kind.NUMBER:
            saved = question_as_dict(question)
            self.initial["answer"] = _number_text(saved["answer"])
            self.initial["tolerance"] = _number_text(saved["tolerance"])


def _number_text(value: Any) -> str:
    """A number as an author typed it (5.0 as 5), or a formula or percentage as is."""
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return "" if value is None else str(value)


def _number_or_text(text: str | None) -> float | str | None:
    """What an author typed for an answer or tolerance: a number if it is one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def question_data(cleaned: dict[str, Any]) -> dict[str, Any]:
    """Return a question in the file format's shape from a clean question form."""
    kind = cleaned.get("kind") or Question.Kind.CHOICE
    data: dict[str, Any] = {"kind": kind, "prompt": cleaned.get("prompt") or ""}
    if kind == Question.Kind.CHOICE:
        data["choices"] = cleaned.get("choices") or []
    else:
        data["answer"] = _number_or_text(cleaned.get("answer"))
        tolerance = _number_or_text(cleaned.get("tolerance"))
        data["tolerance"] = 0.0 if tolerance is None else tolerance
        data["unit"] = cleaned.get("unit") or ""
        data["params"] = cleaned.get("params") or {}
    data["explain"] = cleaned.get("explain") or ""
    return data


class QuestionFormSet(LessonPartFormSet):
    """Checkpoint questions: exactly one right choice, or a number and its tolerance."""

    label_field = "prompt"

    def clean_parts(self):
        for index, form in enumerate(ordered_forms(self)):
            if form.errors:
                continue
            where = f"questions[{index}]."
            try:
                canonical = validate_question(
                    question_data(form.cleaned_data), index, SOURCE
                )
            except LessonFileError as exc:
                name = _inline_field(where, exc.field)
                form.add_error(name if name in form.fields else None, error_text(exc))
                continue
            for name, value in question_columns(canonical).items():
                setattr(form.instance, name, value)

    def canonical(self) -> list[dict[str, Any]]:
        return [
            validate_question(question_data(form.cleaned_data), index, SOURCE)
            for index, form in enumerate(ordered_forms(self))
        ]


def lesson_from_forms(form: LessonForm, formsets: list) -> dict[str, Any]:
    """Return the canonical lesson from a valid lesson form and its inline formsets.

    Raise LessonFileError if the whole does not validate as a lesson file.
    """
    data = lesson_fields(form.cleaned_data, form.instance.preset)
    data["steps"], data["questions"] = [], []
    for formset in formsets:
        if isinstance(formset, StepFormSet):
            data["steps"] = formset.canonical()
        elif isinstance(formset, QuestionFormSet):
            data["questions"] = formset.canonical()
    return validate_lesson(data, SOURCE)


def form_errors(form: LessonForm, formsets: list) -> list[tuple[str, str]]:
    """Return every error as (where, message), for the preview's error page."""
    found = []
    for name, messages in form.errors.items():
        where = form.fields[name].label if name in form.fields else "Lesson"
        for message in messages:
            found.append((str(where or name), message))
    for formset in formsets:
        noun = formset.model._meta.verbose_name.capitalize()
        for message in formset.non_form_errors():
            found.append((f"{noun}s", message))
        for position, form in enumerate(formset.forms, start=1):
            for name, messages in form.errors.items():
                label = form.fields[name].label if name in form.fields else ""
                where = f"{noun} #{position}" + (f": {label}" if label else "")
                found.extend((where, message) for message in messages)
    return found


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploaded files (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportForm(forms.Form):
    files = MultipleFileField(
        label="Lesson files",
        widget=MultipleFileInput(attrs={"accept": ".md,.zip"}),
        help_text="One or more lesson files (.md) or zips of them, as exported.",
    )
