"""People: users with a role, teams, and the agents who work tickets."""
from __future__ import annotations

from zoneinfo import available_timezones

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class BaseModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Team(BaseModel):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def validate_time_zone(value: str) -> None:
    if value and value not in available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.")


class UserManager(DjangoUserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # A superuser runs the desk: by default a supervisor (createsuperuser
        # would otherwise make a requester who sees nothing of the desk).
        extra_fields.setdefault("role", User.Role.SUPERVISOR)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    class Role(models.TextChoices):
        REQUESTER = "requester", "Requester"
        AGENT = "agent", "Agent"
        SUPERVISOR = "supervisor", "Supervisor"
        INTEGRATION = "integration", "Integration"

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REQUESTER)
    # Agents work the tickets of these teams; supervisors oversee them.
    teams = models.ManyToManyField(Team, related_name="members", blank=True)
    # IANA zone the pages show times in; empty = the server's TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True, default="",
                                 validators=[validate_time_zone])

    objects = UserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def is_requester(self) -> bool:
        return self.role == self.Role.REQUESTER

    @property
    def is_agent(self) -> bool:
        return self.role == self.Role.AGENT

    @property
    def is_supervisor(self) -> bool:
        return self.role == self.Role.SUPERVISOR

    @property
    def is_integration(self) -> bool:
        return self.role == self.Role.INTEGRATION


class Agent(BaseModel):
    class Status(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFLINE)
    status_changed_at = models.DateTimeField(default=timezone.now)
    capacity = models.PositiveIntegerField(default=5)
    # Number of tickets assigned to this agent right now. Kept by the service
    # layer under the agent's row lock, so the dispatcher reads load without
    # counting tickets.
    active_count = models.PositiveIntegerField(default=0)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user__username"]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="agent_status_idx")]

    def __str__(self) -> str:
        return self.user.username

    @property
    def username(self) -> str:
        return self.user.username


from agents.kpi_models import KpiDay, KpiRollupDay  # noqa: E402,F401  (registered with the app)
