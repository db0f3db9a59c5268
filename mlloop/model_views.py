"""Placeholder until its helper writes it: every view answers 501."""

from django.http import HttpResponse


def model_list(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def model_detail(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def progress(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def promote(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def schedules(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)
