from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The top layer: pages and tools that span the whole flow of a railcar (its timeline, the
    schedules of every app, the demo, synthetic railcars and simulated raters). It may import
    every app below it; none of them imports it."""

    name = "operations"
