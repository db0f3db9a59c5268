"""Cross-cutting models: the audit trail."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened.

    A request inserts its event unsealed (`seq`, `prev_hash` and `hash` empty), with no lock on
    the chain; the sequencer (`scrapannot.audit_seal`) later gives it its place and its hash.
    `hash` is SHA-256 over the previous event's hash and this event's canonical content (see
    `scrapannot.audit_chain.event_digest`), so editing, deleting or reordering any sealed event
    breaks the chain from that event on. On PostgreSQL a trigger refuses DELETE, and every UPDATE
    but the one that seals an unsealed event without changing its content.
    """

    # The position in the chain, given when sealed; `id` is the order of insertion.
    seq = models.BigIntegerField(unique=True, null=True, blank=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A snapshot of who acted ("system", a username, "token:<username>"), kept even if the user
    # is later renamed.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    # NULL, not "", until sealed: `hash` is unique, and many events may wait to be sealed.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "seq"]),
            # The sequencer's queue: small, since events are sealed within seconds.
            models.Index(
                fields=["id"], condition=models.Q(seq__isnull=True), name="auditevent_unsealed"
            ),
        ]

    def __str__(self) -> str:
        place = f"#{self.seq}" if self.seq is not None else f"(unsealed, id {self.pk})"
        return f"{place} {self.action} {self.object_type}:{self.object_id}"


class PolicySetting(models.Model):
    """An admin's value for a registered policy (`scrapannot.policy`)."""

    key = models.CharField(max_length=80, unique=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"
