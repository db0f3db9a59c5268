"""Signals operations sends so that its other modules (escalation, reports, webhooks) can react
without the live estimates module importing them."""

from django.dispatch import Signal

# Sent after the transaction that recorded a new live estimate commits; kwargs: railcar_id,
# estimate_id. (operations.live sends it; escalation connects it.)
estimate_recorded = Signal()
