from django.apps import AppConfig


class MlloopConfig(AppConfig):
    name = "mlloop"

    def ready(self) -> None:
        from mlloop.config import register_learning_loop
        from mlloop.datasets import register_dataset_policies

        register_dataset_policies()
        register_learning_loop()
