"""Content negotiation for the API (its own module: DRF imports it while its views load)."""

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering at once when the view renders JSON only and the client
    takes JSON or anything (no Accept header, `*/*`, `application/json`): parsing the header
    cost about 3 % of a worker's CPU in the annotator loop. Any other Accept header, a format
    suffix, or a view with several renderers (the schema) goes through DRF's negotiation."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if (
            len(renderers) == 1
            and format_suffix is None
            and not request.query_params.get(self.settings.URL_FORMAT_OVERRIDE or "")
        ):
            accept = request.META.get("HTTP_ACCEPT", "*/*").strip()
            renderer = renderers[0]
            if renderer.media_type == "application/json" and accept in _TAKES_JSON:
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


_TAKES_JSON = {"*/*", "application/json"}
