from django.apps import AppConfig


class AdjudicationConfig(AppConfig):
    name = "adjudication"

    def ready(self) -> None:
        from adjudication import tasks
        from adjudication.policies import register_adjudication_policies
        from labeling import signals

        register_adjudication_policies()
        from adjudication.policy_tradeoff import register_tradeoff_preview

        register_tradeoff_preview()
        # Sent after the N-th rating commits: aggregation runs in a worker, never inside the
        # rater's request, so nothing about the consensus can reach the rater, not even a timing.
        signals.railcar_rated.connect(tasks.enqueue_aggregation, dispatch_uid="aggregation")
