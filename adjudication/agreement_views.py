"""Placeholder until its helper writes it: every view answers 501."""

from django.http import HttpResponse


def agreement(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)
