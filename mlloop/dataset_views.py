"""Dataset versions for admins: the list with a freeze form, a version's detail, the comparison
of two versions, and the export download."""

import tempfile

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from mlloop import datasets
from mlloop.export import ExportError, export_version
from mlloop.label_sources import label_sources
from mlloop.models import DatasetVersion
from scrapannot.charts import grouped_bars
from scrapannot.roles import Role, role_required

ITEMS_PER_PAGE = 100


class FreezeForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, strip=True)
    notes = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    # The registered label sources besides final labels (operators' amendments, when the
    # operator application registers them); none is included unless the admin ticks it.
    include_sources = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also include, for railcars without a final label",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["include_sources"].choices = [
            (s.key, s.description) for s in label_sources().values()
        ]


class CompareForm(forms.Form):
    a = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    b = forms.IntegerField(min_value=1, max_value=2**31 - 1)

    def clean(self) -> dict:
        data = super().clean()
        for key in ("a", "b"):
            if key in data and not DatasetVersion.objects.filter(number=data[key]).exists():
                self.add_error(key, f"There is no version {data[key]}.")
        return data


def _list_page(request: HttpRequest, form: FreezeForm, *, status: int = 200) -> HttpResponse:
    context = {
        "versions": DatasetVersion.objects.select_related("created_by"),
        "form": form,
        "preview": datasets.preview(),
    }
    return render(request, "mlloop/datasets.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def dataset_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _list_page(request, FreezeForm())
    form = FreezeForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    try:
        version = datasets.freeze_version(
            actor=request.user,
            name=form.cleaned_data["name"],
            notes=form.cleaned_data["notes"],
            include_sources=form.cleaned_data["include_sources"],
        )
    except datasets.DatasetError as exc:
        form.add_error(None, str(exc))
        return _list_page(request, form, status=409)
    messages.success(request, f"Froze v{version.number}: {version.railcar_count} railcars.")
    return redirect("mlloop:dataset", number=version.number)


def _charts(version: DatasetVersion) -> dict[str, object]:
    hist = version.histograms
    splits = list(datasets.SPLITS)
    grades = sorted({g for per in hist["grade"].values() for g in per})
    edges = hist["contamination"]["edges"]
    bins = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return {
        "grade_chart": grouped_bars(
            categories=grades,
            series={s: [hist["grade"][s].get(g, 0) for g in grades] for s in splits},
            label="railcars per grade and split",
        ),
        "contamination_chart": grouped_bars(
            categories=bins,
            series={s: hist["contamination"]["counts"][s] for s in splits},
            label="railcars per contamination bin (%) and split",
            width=760,
        ),
    }


@require_GET
@role_required(Role.ADMIN)
def dataset_detail(request: HttpRequest, number: int) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.select_related("created_by"), number=number)
    items = version.items.select_related("railcar", "final_label").order_by("railcar_id")
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"version": version, "page": page, **_charts(version)}
    return render(request, "mlloop/dataset.html", context)


@require_GET
@role_required(Role.ADMIN)
def compare(request: HttpRequest) -> HttpResponse:
    versions = DatasetVersion.objects.only("number", "name")
    form = CompareForm(request.GET) if request.GET else None
    comparison = a = b = None
    status = 200
    if form is not None:
        if form.is_valid():
            a = DatasetVersion.objects.get(number=form.cleaned_data["a"])
            b = DatasetVersion.objects.get(number=form.cleaned_data["b"])
            comparison = datasets.compare(a, b)
        else:
            status = 400
    else:
        # Opened without a choice: the newest version against the one before it, not one
        # version against itself.
        newest = list(DatasetVersion.objects.order_by("-number")[:2])
        if len(newest) == 2:
            b, a = newest
    context = {"versions": versions, "form": form, "comparison": comparison, "a": a, "b": b}
    return render(request, "mlloop/compare.html", context, status=status)


@require_GET
@role_required(Role.ADMIN)
def export_archive(request: HttpRequest, number: int) -> HttpResponse:
    """The zip is built in an anonymous temporary file (never in memory) and streamed from it;
    the file has no name on disk, so it goes away when the response closes it, whatever happens."""
    version = get_object_or_404(DatasetVersion, number=number)
    real_ids = request.GET.get("real_ids") == "1"
    handle = tempfile.TemporaryFile(prefix=f"dataset-v{number}-")  # noqa: SIM115 - closed by FileResponse
    try:
        export_version(version, handle, include_real_ids=real_ids, actor=request.user)
    except ExportError as exc:
        handle.close()
        messages.error(request, f"Export failed: {exc}")
        return redirect("mlloop:dataset", number=number)
    size = handle.tell()
    handle.seek(0)
    response = FileResponse(handle, as_attachment=True, filename=f"dataset-v{number}.zip")
    response["Content-Length"] = str(size)
    response["Content-Type"] = "application/zip"
    return response
