"""The guidelines editor: admins publish a new version of the text annotators read in the
workspace (press i there). Thin: `labeling.guidelines` publishes and audits."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from labeling import guidelines
from labeling.models import Guideline
from scrapannot.roles import Role, role_required


class GuidelinesForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 22}), max_length=guidelines.MAX_CHARS, strip=True
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def edit_guidelines(request: HttpRequest) -> HttpResponse:
    current = guidelines.current_guidelines()
    form = GuidelinesForm(request.POST or None, initial={"text": current.text if current else ""})
    if request.method == "POST" and form.is_valid():
        try:
            published = guidelines.publish_guidelines(
                author=request.user, text=form.cleaned_data["text"]
            )
        except ValueError as exc:
            form.add_error("text", str(exc))
        else:
            messages.success(request, f"Version {published.version} published.")
            return redirect("labeling:guidelines-edit")
    history = Guideline.objects.select_related("author").order_by("-version")[:50]
    context = {"form": form, "current": current, "history": history}
    return render(request, "labeling/guidelines_edit.html", context)
