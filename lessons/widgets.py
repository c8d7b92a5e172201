"""The step actions editor: rows in the browser, the same JSON list underneath.

With JavaScript, ``static/js/admin-actions.js`` turns the textarea into rows (a
command or settings, picked from the lesson's engine, then typed inputs) and posts
them as fields named ``<name>-<row>-...`` with a ``<name>-rows`` count. Without it,
the textarea of the same actions as JSON is posted. Either way the field gets the
same list of actions, which ``lessons.services.validate_action`` checks.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.urls import reverse
from django.utils.html import format_html, json_script

# More rows than any step needs, so a forged count cannot make the server loop long.
MAX_ROWS = 100


def _number(text: str) -> float | str:
    """Return ``text`` as a number, or unchanged so validation names what is wrong."""
    try:
        return float(text)
    except ValueError:
        return text


def actions_from_rows(data, name: str) -> list[dict[str, Any]]:
    """Return the actions posted as rows, in the lesson file's shape (values as text).

    Values stay text: the engine's declaration converts and checks them, exactly as
    it does for the values of a lesson file.
    """
    try:
        count = min(max(int(data.get(f"{name}-rows", "")), 0), MAX_ROWS)
    except ValueError:
        count = 0
    actions = []
    for row in range(count):
        prefix = f"{name}-{row}-"
        kind = data.get(prefix + "kind", "")
        action: dict[str, Any] = {}
        if kind == "command":
            action["command"] = data.get(prefix + "command", "")
            arg = prefix + "arg-"
            action["args"] = {
                key[len(arg) :]: data.get(key) for key in data if key.startswith(arg)
            }
        elif kind == "set":
            values = {}
            setting = 0
            while f"{prefix}set-{setting}-name" in data:
                values[data.get(f"{prefix}set-{setting}-name", "")] = data.get(
                    f"{prefix}set-{setting}-value", ""
                )
                setting += 1
            action["set"] = values
        after = (data.get(prefix + "after") or "").strip()
        if after:
            action["after"] = _number(after)
        actions.append(action)
    return actions


class ActionsWidget(forms.Textarea):
    """The actions as JSON in a textarea, with what the rows editor needs beside it."""

    def __init__(self, attrs=None):
        super().__init__(
            {"rows": 4, "class": "monospace actions-text", **(attrs or {})}
        )
        # [{"row": 0, "field": "arg:writes", "message": ...}], set by the form.
        self.row_errors: list[dict[str, Any]] = []

    class Media:
        js = [forms.Script("js/admin-actions.js", type="module")]

    def value_from_datadict(self, data, files, name):
        if f"{name}-rows" in data:
            return actions_from_rows(data, name)
        value = super().value_from_datadict(data, files, name)
        if isinstance(value, str):
            return value.replace("\r\n", "\n").replace("\r", "\n")
        return value

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        try:
            actions = json.loads(value) if value else []
        except (TypeError, ValueError):
            actions = None
        if not isinstance(actions, list):
            actions = None
        field_id = (attrs or {}).get("id") or f"id_{name}"
        state = {"actions": actions, "errors": self.row_errors}
        return format_html(
            '<div class="actions-editor" data-engines-url="{}">{}'
            '<p class="actions-text-help help">A JSON list of actions (line breaks '
            "do not matter): "
            '<code>{{"command": "NAME", "args": {{"ARG": VALUE}}}}</code> or '
            '<code>{{"set": {{"SETTING": VALUE}}}}</code>, each with an optional '
            '<code>"after": SECONDS</code> of simulated time. With JavaScript on, '
            "pick them from lists instead.</p>{}</div>",
            reverse("engines"),
            textarea,
            json_script(state, f"{field_id}-state"),
        )
