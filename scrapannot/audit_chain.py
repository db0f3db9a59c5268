"""The hash chain's arithmetic: what an event's hash covers. No database access here."""

import hashlib
import json
from typing import Any

from scrapannot.models import AuditEvent

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_digest(
    *,
    prev_hash: str,
    seq: int,
    created_at: Any,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: Any,
) -> str:
    content = canonical_json(
        {
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor_id": actor_id,
            "actor_label": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def digest_with(event: AuditEvent, *, seq: int, prev_hash: str) -> str:
    """The hash `event`'s stored content gets at chain position `seq` after `prev_hash`."""
    return event_digest(
        prev_hash=prev_hash,
        seq=seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
    )


def digest_of(event: AuditEvent) -> str:
    """The hash a sealed event's stored content gives (equal to `event.hash` unless edited)."""
    if event.seq is None or event.prev_hash is None:
        return ""
    return digest_with(event, seq=event.seq, prev_hash=event.prev_hash)
