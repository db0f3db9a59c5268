"""Middleware of our own."""

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages middleware, with the request's message storage built on first use.

    Django builds it for every request (a cookie signer, the session fallback): about 4 % of a
    gunicorn worker's CPU in the annotator loop, whose API calls never show a message. Pages
    that add or show messages use it exactly as before; a request that never touched it
    leaves the response alone, as the storage would (nothing added, nothing to store)."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
