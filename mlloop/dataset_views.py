"""Placeholder until its helper writes it: every view answers 501."""

from django.http import HttpResponse


def dataset_list(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def compare(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def dataset_detail(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)


def export_archive(request, *args, **kwargs):  # noqa: ARG001
    return HttpResponse("not built yet", status=501)
