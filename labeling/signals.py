"""Signals labeling sends so that higher layers can start work without labeling importing them."""

from django.dispatch import Signal

# Sent after the transaction that ingested a new unloading commits; kwargs: railcar_id.
unloading_ingested = Signal()

# Sent after the transaction that moved a railcar into the annotation pool commits; kwargs:
# railcar_id.
railcar_entered_pool = Signal()

# Sent after the transaction that recorded a railcar's last needed rating commits (aggregation
# starts from it); kwargs: railcar_id.
railcar_rated = Signal()
