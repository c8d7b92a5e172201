from django.contrib import admin

from .models import Lesson, Module


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "order")


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("title", "module", "engine", "order", "status")
    list_filter = ("module", "status", "engine")
    search_fields = ("title", "summary", "body")
