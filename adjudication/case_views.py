"""Placeholder until its helper writes it: every view answers 501."""

from django.http import HttpResponse


def queue(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def reapply(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def case(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def frame_image(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)
