"""Signals the learning loop's domain sends so that it never imports its own tasks (which import
the domain): MlloopConfig.ready connects them to the tasks that do the work."""

from django.dispatch import Signal

# Sent after the transaction that queued a model version for training commits; kwargs:
# model_version_id.
model_run_queued = Signal()
