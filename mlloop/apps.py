from django.apps import AppConfig


class MlloopConfig(AppConfig):
    name = "mlloop"

    def ready(self) -> None:
        from labeling import signals
        from mlloop import tasks
        from mlloop.config import register_learning_loop
        from mlloop.datasets import register_dataset_policies

        register_dataset_policies()
        register_learning_loop()
        # A railcar entering the pool is scored at once (when there is a production model), so
        # it does not wait for the hourly run at priority 0 behind every scored railcar.
        signals.railcar_entered_pool.connect(tasks.enqueue_scoring, dispatch_uid="scoring")
