from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The top layer: pages and tools that span the whole flow of a railcar (its timeline, the
    schedules of every app, the demo, synthetic railcars and simulated raters), and the operator
    application (live estimates, review, escalation, reports). It may import every app below it;
    none of them imports it."""

    name = "operations"

    def ready(self) -> None:
        from labeling import signals as labeling_signals
        from operations import escalation, tasks, webhooks
        from operations.amendment_labels import register_operator_label_source
        from operations.live_policies import register_live_policies
        from operations.policies import register_operations_policies
        from operations.signals import estimate_recorded

        register_operations_policies()
        register_live_policies()
        # Operators' amendments are a label source a dataset freeze may include (mlloop.datasets).
        register_operator_label_source()
        # A layer posted while unloading is estimated as soon as its keyframe passes the checks;
        # a railcar posted whole (or closed) when it enters the pool. Both signals are sent after
        # commit, and the task is a no-op when the estimate for that state exists.
        labeling_signals.layer_checked.connect(tasks.enqueue_live_estimate, dispatch_uid="live")
        labeling_signals.railcar_entered_pool.connect(
            tasks.enqueue_live_estimate, dispatch_uid="live-pool"
        )
        labeling_signals.railcar_entered_pool.connect(
            escalation.on_railcar_entered_pool, dispatch_uid="escalation-pool"
        )
        # Each recorded estimate is held against the escalation policies.
        estimate_recorded.connect(escalation.on_estimate_recorded, dispatch_uid="escalation")
        # ... and posted to the webhook endpoints that want estimates.
        estimate_recorded.connect(webhooks.on_estimate_recorded, dispatch_uid="webhooks")
