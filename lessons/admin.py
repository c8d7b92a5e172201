from django.contrib import admin

from .models import Lesson, Module


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "order")


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("title", "module", "engine", "order", "published")
    list_filter = ("module", "published", "engine")
    search_fields = ("title", "summary", "body")
