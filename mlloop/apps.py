from django.apps import AppConfig


class MlloopConfig(AppConfig):
    name = "mlloop"
