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

# Sent after the transaction that appended frames to an open unloading commits, once per layer the
# append touched whose keyframe passed the quality checks (labeling.live_ingest); kwargs:
# railcar_id, layer_index.
layer_checked = Signal()
