"""The instructors' authoring tools: lessons with a live preview, arranging, history, files."""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.forms import Script
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from simulations.engines import REGISTRY

from . import admin_views
from .authoring import (
    lesson_record_edit,
    lessons_export_zip,
    lessons_set_status,
    module_save,
)
from .forms import (
    PRESET_PREFIX,
    QuestionForm,
    QuestionFormSet,
    StepForm,
    StepFormSet,
    lesson_form_for,
)
from .models import Lesson, LessonVersion, Module, Question, Step, Term


class LessonPartInline(admin.StackedInline):
    extra = 0
    classes = ["lesson-parts"]

    def has_delete_permission(self, request, obj=None):
        # Steps and questions are parts of their lesson: whoever may change the
        # lesson may remove one (and history can bring it back).
        return request.user.has_perm("lessons.change_lesson")


class StepInline(LessonPartInline):
    model = Step
    form = StepForm
    formset = StepFormSet
    verbose_name = "guided step"
    verbose_name_plural = "guided steps (timed actions checked against the engine)"


class QuestionInline(LessonPartInline):
    model = Question
    form = QuestionForm
    formset = QuestionFormSet
    verbose_name = "checkpoint question"
    verbose_name_plural = "checkpoint questions"


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "module",
        "order",
        "status",
        "engine",
        "updated_at",
        "links",
    )
    list_filter = ("status", "module", "engine")
    list_select_related = ("module",)
    search_fields = ("title", "slug", "summary", "body")
    ordering = ("module__order", "order", "slug")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("student_view",)
    inlines = [StepInline, QuestionInline]
    actions = ["publish", "move_to_draft", "export_files"]

    class Media:
        css = {"all": ["css/admin.css"]}
        js = [Script("js/admin/lesson_form.js", type="module")]

    # The form: one field per parameter of the lesson's engine ------------------

    def engine_for(self, request, obj=None):
        """Return the engine whose parameters the form shows (the posted one first)."""
        kind = request.POST.get("engine", "") if request.method == "POST" else ""
        if kind not in REGISTRY:
            kind = obj.engine if obj is not None else request.GET.get("engine", "")
        return REGISTRY.get(kind)

    def get_fieldsets(self, request, obj=None):
        engine = self.engine_for(request, obj)
        preset = [PRESET_PREFIX + p.name for p in engine.params] if engine else []
        return [
            (
                None,
                {
                    "fields": [
                        "title",
                        "slug",
                        ("module", "order"),
                        "status",
                        "summary",
                        "student_view",
                        "base_version",
                    ]
                },
            ),
            ("Text", {"fields": ["body"], "classes": ["lesson-text"]}),
            ("Learning", {"fields": ["objectives", "topics", "glossary"]}),
            (
                "Simulation",
                {
                    "fields": ["engine", *preset],
                    "classes": ["lesson-simulation"],
                    "description": "The preset: the simulation's settings when a "
                    "student opens the lesson. Leave a number empty for its default.",
                },
            ),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        engine = self.engine_for(request, obj)
        kwargs["form"] = lesson_form_for(
            engine.kind if engine else None, editor=request.user
        )
        return super().get_form(request, obj, change, **kwargs)

    def bound_forms(self, request, obj=None):
        """Return the lesson form and inline formsets bound to the posted data."""
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        form_class = self.get_form(request, obj, change=obj is not None, fields=fields)
        form = form_class(
            request.POST, request.FILES, instance=obj if obj else self.model()
        )
        formsets = [
            formset_class(
                **self.get_formset_kwargs(
                    request, form.instance, inline, formset_class.get_default_prefix()
                )
            )
            for formset_class, inline in self.get_formsets_with_inlines(request, obj)
        ]
        return form, formsets

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        lesson_record_edit(
            form.instance,
            author=request.user,
            note=self.edit_note(form, formsets, change),
        )

    @staticmethod
    def edit_note(form, formsets, change) -> str:
        if not change:
            return "created in the admin"
        changed = []
        for name in form.changed_data:
            label = "preset" if name.startswith(PRESET_PREFIX) else name
            if label not in changed:
                changed.append(label)
        for formset in formsets:
            if formset.has_changed() or formset.deleted_forms:
                changed.append(formset.prefix)
        return "edited " + ", ".join(changed) if changed else "saved in the admin"

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None and obj.pk:
            endpoint = reverse(
                "admin:lessons_lesson_preview_change", args=[quote(obj.pk)]
            )
        else:
            endpoint = reverse("admin:lessons_lesson_preview")
        context["preview_endpoint"] = endpoint
        context["engines_url"] = reverse("engines")
        return super().render_change_form(request, context, add, change, form_url, obj)

    # Student view: drafts have a private link, published lessons a public page ------

    def view_on_site(self, obj):
        return obj.get_absolute_url() if obj.published else None

    @admin.display(description="Student view")
    def student_view(self, obj):
        if obj is None or obj.pk is None:
            return "Save the lesson to get its private preview link."
        if obj.published:
            url = obj.get_absolute_url()
            return format_html(
                'Published: students see it at <a href="{}">{}</a>', url, url
            )
        url = obj.preview_url()
        return format_html(
            "Draft: students cannot see it. Its private preview link (anyone with "
            'the link can open it): <a href="{}" target="_blank" rel="noopener">{}</a>',
            url,
            url,
        )

    @admin.display(description="Open")
    def links(self, obj):
        if obj.published:
            return format_html('<a href="{}">view on site</a>', obj.get_absolute_url())
        return format_html('<a href="{}">private preview</a>', obj.preview_url())

    # Actions ----------------------------------------------------------------------

    @admin.action(description="Publish", permissions=["change"])
    def publish(self, request, queryset):
        count = lessons_set_status(
            queryset.select_related("module"),
            Lesson.Status.PUBLISHED,
            author=request.user,
        )
        self.message_user(request, f"Published {count} lesson(s).", messages.SUCCESS)

    @admin.action(description="Move back to draft", permissions=["change"])
    def move_to_draft(self, request, queryset):
        count = lessons_set_status(
            queryset.select_related("module"), Lesson.Status.DRAFT, author=request.user
        )
        self.message_user(
            request,
            f"Moved {count} lesson(s) back to draft: students no longer see them.",
            messages.SUCCESS,
        )

    @admin.action(description="Export selected as files", permissions=["view"])
    def export_files(self, request, queryset):
        archive = lessons_export_zip(queryset.select_related("module"))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response = HttpResponse(archive, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="lessons-{stamp}.zip"'
        return response

    # Pages of their own --------------------------------------------------------------

    def get_urls(self):
        def wrap(view):
            def inner(request, *args, **kwargs):
                return view(request, self, *args, **kwargs)

            return self.admin_site.admin_view(update_wrapper(inner, view))

        return [
            path(
                "preview/",
                wrap(admin_views.lesson_preview),
                name="lessons_lesson_preview",
            ),
            path(
                "<path:object_id>/preview/",
                wrap(admin_views.lesson_preview),
                name="lessons_lesson_preview_change",
            ),
            path(
                "arrange/",
                wrap(admin_views.lessons_arrange_view),
                name="lessons_lesson_arrange",
            ),
            path(
                "import/",
                wrap(admin_views.lessons_import_view),
                name="lessons_lesson_import",
            ),
            path(
                "versions/<int:version_id>/revert/",
                wrap(admin_views.lesson_revert_view),
                name="lessons_lesson_revert",
            ),
            path(
                "versions/<slug:slug>/",
                wrap(admin_views.lesson_versions_view),
                name="lessons_lesson_versions",
            ),
            *super().get_urls(),
        ]

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return super().history_view(request, object_id, extra_context)
        return redirect("admin:lessons_lesson_versions", obj.slug)

    def changelist_view(self, request, extra_context=None):
        user = request.user
        extra_context = {
            **(extra_context or {}),
            "can_arrange": user.has_perm("lessons.change_lesson")
            and user.has_perm("lessons.change_module"),
            "can_import": user.has_perm("lessons.add_lesson")
            and user.has_perm("lessons.change_lesson"),
        }
        return super().changelist_view(request, extra_context)


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "order", "lesson_count")
    ordering = ("order", "slug")
    prepopulated_fields = {"slug": ("title",)}
    search_fields = ("title", "slug")

    @admin.display(description="Lessons")
    def lesson_count(self, obj):
        return obj.lessons.count()

    def save_model(self, request, obj, form, change):
        module_save(obj, author=request.user)


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ("term", "slug")
    prepopulated_fields = {"slug": ("term",)}
    search_fields = ("term", "slug", "definition")


@admin.register(LessonVersion)
class LessonVersionAdmin(admin.ModelAdmin):
    """Every saved state of every lesson, deleted ones included; never deletable."""

    list_display = ("slug", "created_at", "author", "note", "history")
    list_filter = ("created_at",)
    search_fields = ("slug", "note")
    list_select_related = ("author",)
    fields = ("slug", "lesson", "author", "note", "created_at", "text")
    readonly_fields = fields

    @admin.display(description="History")
    def history(self, obj):
        url = reverse("admin:lessons_lesson_versions", args=[obj.slug])
        return format_html('<a href="{}">history, diff and revert</a>', url)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
