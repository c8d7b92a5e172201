from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Run(models.Model):
    """One live simulation: an engine, its parameters and seed, and who owns it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    seed = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    speed = models.FloatField(default=1.0)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="runs",
    )
    visitor = models.CharField(max_length=64, blank=True, db_index=True)
    # The address it was started from (scalelab.limits): live runs are counted per
    # address as well as per visitor.
    client = models.CharField(max_length=45, blank=True, db_index=True)
    lesson = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    last_seq = models.BigIntegerField(default=0)
    checkpoint = models.BinaryField(null=True, blank=True, editable=False)
    checkpoint_seq = models.BigIntegerField(default=0)
    checkpoint_at = models.DateTimeField(null=True, blank=True)
    # How the run began, for its timeline (``params`` above follows the run): the
    # starting settings and speed, the frame rate, and for a run started from a
    # moment of another, the frame it was replayed to.
    origin = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.kind} run {self.id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.RUNNING, self.Status.PAUSED)


class RunControl(models.Model):
    """One control a run applied (speed, set, command, pause, reset...), in order.

    ``seq`` is the number of frames the run had made when it took effect and ``t``
    its simulated time. Written with the checkpoint that holds its effect, so the
    timeline and the saved world always agree. Together with the run's origin and
    seed they replay the run exactly (``simulations.runs.replay``).
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="controls")
    n = models.PositiveIntegerField()
    seq = models.BigIntegerField()
    t = models.FloatField()
    control = models.JSONField()

    class Meta:
        ordering = ["run", "n"]
        constraints = [
            models.UniqueConstraint(fields=["run", "n"], name="run_control_order")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} #{self.n}: {self.control.get('type')} at {self.t:g} s"


class CurveJob(models.Model):
    """A background job: the LRU hit ratio for every cache size, in one pass."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    params = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    progress = models.FloatField(default=0.0)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="curve_jobs",
    )
    visitor = models.CharField(max_length=64, blank=True, db_index=True)
    client = models.CharField(max_length=45, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"curve {self.id} ({self.status})"
