from django.apps import AppConfig


class ScrapannotConfig(AppConfig):
    name = "scrapannot"
    verbose_name = "scrapannot core"
