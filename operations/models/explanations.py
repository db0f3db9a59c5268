"""Cached Grad-CAM heatmaps (operations.explanations): one per railcar, model version and layer."""

from django.db import models


class Explanation(models.Model):
    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.CASCADE, related_name="explanations"
    )
    model_version = models.ForeignKey(
        "mlloop.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    layer_index = models.PositiveIntegerField()
    # Content-addressed PNG in the default storage (explanations/<sha[:2]>/<sha>.png): the name
    # carries no railcar id, line or date, like the frames' and thumbnails'.
    file = models.FileField(max_length=200)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["railcar_id", "layer_index"]
        constraints = [
            # A redelivered task finds its heatmap stored and stops.
            models.UniqueConstraint(
                fields=["railcar", "model_version", "layer_index"], name="explanation_once"
            )
        ]

    def __str__(self) -> str:
        return f"Grad-CAM of layer {self.layer_index} of {self.railcar_id}"
