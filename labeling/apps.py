from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"

    def ready(self) -> None:
        from labeling import signals, tasks
        from labeling.policies import register_labeling_policies

        register_labeling_policies()
        # Both signals are sent after commit, so a worker never sees uncommitted rows.
        signals.unloading_ingested.connect(tasks.enqueue_quality_checks, dispatch_uid="quality")
        signals.railcar_entered_pool.connect(tasks.enqueue_embeddings, dispatch_uid="embeddings")
