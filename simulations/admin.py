from django.contrib import admin

from .models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "owner", "created_at", "last_seq")
    list_filter = ("status", "kind")
    readonly_fields = ("checkpoint_seq", "checkpoint_at", "last_seq")
    exclude = ("checkpoint",)
