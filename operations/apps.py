from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The top layer: pages and tools that span the whole flow of a railcar (its timeline, the
    schedules of every app, the demo, synthetic railcars and simulated raters) and the operator
    application. It may import every app below it; none of them imports it."""

    name = "operations"

    def ready(self) -> None:
        from operations.amendment_labels import register_operator_label_source
        from operations.policies import register_operations_policies

        register_operations_policies()
        # Operators' amendments are a label source a dataset freeze may include (mlloop.datasets).
        register_operator_label_source()
