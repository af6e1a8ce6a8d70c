"""Outgoing notifications (email, webhook), each one a row with its attempts."""
from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Delivery(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # The email address or the webhook URL.
    recipient = models.CharField(max_length=500)
    # The event kind (webhooks) or notification kind (emails) this delivers.
    event = models.CharField(max_length=30)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due_idx",
            ),
            models.Index(fields=["ticket", "-id"], name="delivery_ticket_idx"),
            models.Index(fields=["status", "-id"], name="delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} → {self.recipient} ({self.status})"
