"""The rating guidelines admins write for annotators: one row per published version, never
changed afterwards, so a rating can always be read against the text that was in force."""

from django.conf import settings
from django.db import models


class Guideline(models.Model):
    version = models.PositiveIntegerField(unique=True)
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"guidelines v{self.version}"
