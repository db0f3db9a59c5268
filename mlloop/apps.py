from django.apps import AppConfig


class MlloopConfig(AppConfig):
    name = "mlloop"

    def ready(self) -> None:
        from adjudication.estimates import register_provider
        from labeling import signals as labeling_signals
        from mlloop import signals, tasks
        from mlloop.datasets import register_dataset_policies
        from mlloop.estimates import production_estimate
        from mlloop.policies import register_mlloop_policies

        register_dataset_policies()
        register_mlloop_policies()
        # The senior inspector's page shows the production model's estimate; adjudication sits
        # below mlloop and never imports it.
        register_provider(production_estimate)
        # A railcar entering the pool is scored at once (when there is a production model), so
        # it does not wait for the hourly run at priority 0 behind every scored railcar.
        labeling_signals.railcar_entered_pool.connect(tasks.enqueue_scoring, dispatch_uid="scoring")
        # Sent after a queued run commits, so the worker never sees an uncommitted row.
        signals.model_run_queued.connect(tasks.enqueue_training, dispatch_uid="training")
