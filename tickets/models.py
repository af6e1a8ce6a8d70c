"""Work-order types, tickets (a django-fsm-2 state machine) and their event log."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from agents.models import BaseModel, Team
from tickets import clock

MAX_PRIORITY = 5
MIN_PRIORITY = 1

slug_validator = RegexValidator(r"^[a-z0-9-]+$", "Use lowercase letters, digits and hyphens only.")
field_name_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*$", "Start with a letter; use lowercase letters, digits and underscores."
)


class Priority(models.IntegerChoices):
    LOW = 1, "Low"
    NORMAL = 2, "Normal"
    HIGH = 3, "High"
    URGENT = 4, "Urgent"
    CRITICAL = 5, "Critical"


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class TicketType(BaseModel):
    class OnBreach(models.TextChoices):
        REASSIGN = "reassign", "Reclaim to the pool"
        NOTIFY = "notify", "Notify only"

    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="ticket_types")
    default_priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, default=Priority.NORMAL
    )
    time_limit_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    max_lock_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    handover_priority_step = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(4)]
    )
    breach_priority_step = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(4)]
    )
    reopen_priority_step = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(4)]
    )
    on_breach = models.CharField(max_length=10, choices=OnBreach.choices, default=OnBreach.REASSIGN)
    feedback_window_hours = models.PositiveIntegerField(default=72, validators=[MinValueValidator(1)])
    channels = models.JSONField(default=list, blank=True)
    callback_url = models.URLField(max_length=500, blank=True, default="")
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    secret = models.CharField(max_length=200, blank=True, default="")
    callback_attempts = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    callback_backoff_seconds = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(3600)]
    )
    callback_timeout_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_priority__gte=MIN_PRIORITY, default_priority__lte=MAX_PRIORITY),
                name="tickettype_default_priority_range",
            ),
            models.CheckConstraint(
                condition=Q(time_limit_minutes__gte=1), name="tickettype_time_limit_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def callback(self) -> bool:
        return bool(self.callback_url)

    @property
    def time_limit(self) -> timedelta:
        return clock.minutes(self.time_limit_minutes)

    @property
    def feedback_window(self) -> timedelta:
        return clock.hours(self.feedback_window_hours)


class TicketTypeField(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        CHOICE = "choice", "Choice"
        EMAIL = "email", "Email"

    DEFAULT_TEXT_MAX_LENGTH = 1000

    ticket_type = models.ForeignKey(TicketType, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=50, validators=[field_name_validator])
    label = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    required = models.BooleanField(default=False)
    choices = models.JSONField(default=list, blank=True)
    max_length = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket_type", "name"], name="tickettypefield_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_max_length(self) -> int | None:
        if self.kind != self.Kind.TEXT:
            return None
        return self.max_length or self.DEFAULT_TEXT_MAX_LENGTH


class TicketState(models.TextChoices):
    CALLBACK = "callback", "Callback"
    POOLED = "pooled", "Pooled"
    ASSIGNED = "assigned", "Assigned"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = (TicketState.CALLBACK, TicketState.POOLED, TicketState.ASSIGNED)
BREACHABLE_STATES = (TicketState.POOLED, TicketState.ASSIGNED)


class Ticket(ConcurrentTransitionMixin, FSMModelMixin, BaseModel):
    ticket_type = models.ForeignKey(TicketType, on_delete=models.PROTECT, related_name="tickets")
    # Copied from the type on creation: the dispatcher and the visibility
    # rules filter by team without a join.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="tickets")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    state = FSMField(
        max_length=10, choices=TicketState.choices, default=TicketState.POOLED, protected=True
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_tickets"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    excluded_agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="excluded_from_tickets"
    )

    # Processing time limit of the current round.
    round = models.PositiveIntegerField(default=0)
    sla_started_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    round_breached = models.BooleanField(default=False)
    breached_at = models.DateTimeField(null=True, blank=True)

    assigned_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="locked_tickets",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    in_time = models.BooleanField(null=True, blank=True)
    result = models.TextField(null=True, blank=True)
    feedback_due_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    handover_count = models.PositiveIntegerField(default=0)
    reopen_count = models.PositiveIntegerField(default=0)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)

    # Callback flow bookkeeping.
    callback_attempts = models.PositiveSmallIntegerField(default=0)
    callback_next_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=MIN_PRIORITY, priority__lte=MAX_PRIORITY),
                name="ticket_priority_range",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="ticket_rating_range",
            ),
            models.CheckConstraint(
                condition=~Q(state=TicketState.ASSIGNED) | Q(assignee__isnull=False),
                name="ticket_assigned_has_assignee",
            ),
            models.CheckConstraint(
                condition=~Q(state=TicketState.POOLED) | Q(assignee__isnull=True),
                name="ticket_pooled_has_no_assignee",
            ),
        ]
        indexes = [
            # Dispatcher: the pool of a team in dispatch order.
            models.Index(
                "team",
                models.F("priority").desc(),
                "due_at",
                "id",
                condition=Q(state=TicketState.POOLED),
                name="ticket_pool_order_idx",
            ),
            # Breach sweep: open tickets of a round not yet breached, by due time.
            models.Index(
                fields=["due_at"],
                condition=Q(state__in=BREACHABLE_STATES, round_breached=False),
                name="ticket_due_open_idx",
            ),
            # Lock expiry sweep.
            models.Index(
                fields=["locked_until"],
                condition=Q(locked_until__isnull=False),
                name="ticket_lock_expiry_idx",
            ),
            # Auto-close sweep.
            models.Index(
                fields=["feedback_due_at"],
                condition=Q(state=TicketState.RESOLVED),
                name="ticket_feedback_due_idx",
            ),
            # Callback re-drive sweep.
            models.Index(
                fields=["callback_next_at"],
                condition=Q(state=TicketState.CALLBACK),
                name="ticket_callback_due_idx",
            ),
            # KPIs (agents/kpi.py): the open backlog per team and type, now.
            models.Index(
                fields=["team", "ticket_type"],
                condition=Q(state__in=OPEN_STATES),
                name="ticket_open_kpi_idx",
            ),
            models.Index(fields=["assignee", "state"], name="ticket_assignee_state_idx"),
            models.Index(fields=["team", "-id"], name="ticket_team_idx"),
            models.Index(fields=["requester", "-id"], name="ticket_requester_idx"),
            models.Index(fields=["created_by", "-id"], name="ticket_created_by_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    # -- derived, non-relational values ------------------------------------

    def lock_in_force(self, now=None) -> bool:
        now = now or timezone.now()
        return self.locked_until is not None and self.locked_until > now

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    # -- transitions: they only set fields on self (STYLE.md 3) ---------------

    def _start_round(self, now) -> None:
        self.round += 1
        self.sla_started_at = now
        self.due_at = now + self.ticket_type.time_limit
        self.round_breached = False

    def _clear_lock(self) -> None:
        self.locked_until = None
        self.locked_by = None

    @transition(field=state, source=TicketState.CALLBACK, target=TicketState.POOLED)
    def enter_pool(self, *, now) -> None:
        """First entry into the pool: the first processing round starts."""
        self._start_round(now)
        self.callback_next_at = None

    @transition(field=state, source=TicketState.CALLBACK, target=TicketState.RESOLVED)
    def resolve_by_callback(self, *, now, result: str) -> None:
        self.result = result
        self.resolved_at = now
        self.in_time = True
        self.feedback_due_at = now + self.ticket_type.feedback_window
        self.callback_next_at = None

    @transition(field=state, source=[TicketState.POOLED, TicketState.ASSIGNED], target=TicketState.ASSIGNED)
    def assign(self, *, agent_user, now) -> None:
        self.assignee = agent_user
        self.assigned_at = now
        self._clear_lock()

    @transition(field=state, source=TicketState.ASSIGNED, target=TicketState.POOLED)
    def release(self) -> None:
        """Back to the pool (hand-over, breach reclaim, away reclaim)."""
        self.assignee = None
        self.assigned_at = None
        self._clear_lock()

    @transition(field=state, source=TicketState.ASSIGNED, target=TicketState.RESOLVED)
    def resolve(self, *, now, result: str) -> None:
        self.result = result
        self.resolved_at = now
        # Late once the deadline has passed, even if the breach sweep has not
        # marked it yet: a delayed sweep must not make a late result in time.
        self.in_time = not self.round_breached and (self.due_at is None or now < self.due_at)
        self.feedback_due_at = now + self.ticket_type.feedback_window
        self._clear_lock()

    @transition(field=state, source=TicketState.RESOLVED, target=TicketState.CLOSED)
    def close(self, *, now) -> None:
        self.closed_at = now
        self.feedback_due_at = None

    @transition(field=state, source=TicketState.RESOLVED, target=TicketState.POOLED)
    def reopen(self, *, now, priority_step: int) -> None:
        self.priority = min(MAX_PRIORITY, self.priority + priority_step)
        self.reopen_count += 1
        self.assignee = None
        self.assigned_at = None
        self.resolved_at = None
        self.in_time = None
        self.result = None
        self.feedback_due_at = None
        self._start_round(now)

    @transition(field=state, source=list(OPEN_STATES), target=TicketState.CANCELLED)
    def cancel(self, *, now) -> None:
        self.cancelled_at = now
        self.callback_next_at = None
        self._clear_lock()


class TicketEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "created"
        CALLBACK_STARTED = "callback_started"
        CALLBACK_RESOLVED = "callback_resolved"
        CALLBACK_NEEDS_AGENT = "callback_needs_agent"
        CALLBACK_FAILED = "callback_failed"
        POOLED = "pooled"
        ASSIGNED = "assigned"
        LOCKED = "locked"
        UNLOCKED = "unlocked"
        LOCK_EXPIRED = "lock_expired"
        HANDED_OVER = "handed_over"
        RESOLVED = "resolved"
        BREACHED = "breached"
        RECLAIMED = "reclaimed"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        AUTO_CLOSED = "auto_closed"
        CANCELLED = "cancelled"
        COMMENT = "comment"
        NOTE = "note"
        NOTIFIED = "notified"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ticket_events",
    )
    from_state = models.CharField(max_length=10, blank=True, default="")
    to_state = models.CharField(max_length=10, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["ticket", "id"], name="event_ticket_idx"),
            models.Index(fields=["kind", "at"], name="event_kind_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on #{self.ticket_id}"


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    kind = models.CharField(max_length=30)
    message = models.TextField()
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "read", "-id"], name="notification_user_idx")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"


class IdempotencyKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")
        ]


from tickets.delivery_models import Delivery  # noqa: E402,F401  (registered with the app)
