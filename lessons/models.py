from __future__ import annotations

from django.db import models
from django.urls import reverse


class Module(models.Model):
    """A group of lessons in the order the ideas build on each other."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


class Lesson(models.Model):
    """One idea, explained beside a live simulation of it."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="lessons")
    order = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=300, blank=True)
    body = models.TextField(help_text="Markdown.")
    engine = models.CharField(max_length=40, help_text="The simulation engine's kind.")
    preset = models.JSONField(default=dict, blank=True, help_text="Engine parameters.")
    steps = models.JSONField(
        default=list, blank=True, help_text="Guided 'try this' steps."
    )
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["module__order", "order", "slug"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("lesson", args=[self.slug])
