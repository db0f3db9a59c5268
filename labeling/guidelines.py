"""Publishing the rating guidelines. A new text is a new version (the old ones stay), written by
an admin and audited; annotators read the newest one in the workspace. The text is the admin's
own words: nothing here ever adds a railcar, a rating or another rater to it."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from labeling.models import Guideline
from scrapannot import audit

MAX_CHARS = 20_000


class NothingChanged(ValueError):
    """The text is the same as the version in force."""


def current_guidelines() -> Guideline | None:
    return Guideline.objects.order_by("-version").first()


def publish_guidelines(*, author: AbstractBaseUser, text: str) -> Guideline:
    """Publish `text` as the next version. ValueError for an empty, too long or unchanged text."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ValueError("The guidelines cannot be empty.")
    if len(text) > MAX_CHARS:
        raise ValueError(f"The guidelines are limited to {MAX_CHARS:,} characters.")
    try:
        with transaction.atomic():
            current = current_guidelines()
            if current is not None and current.text == text:
                raise NothingChanged("This is the text already in force: nothing to publish.")
            version = (Guideline.objects.aggregate(v=Max("version"))["v"] or 0) + 1
            guideline = Guideline.objects.create(version=version, text=text, author=author)
            audit.record(
                action="guidelines.published",
                actor=author,
                obj=guideline,
                payload={"version": version, "chars": len(text)},
            )
    except IntegrityError as exc:
        # Two admins publishing at once both took the same next number: the unique version
        # refuses the second, who reloads and sees the other's text first.
        raise ValueError("Someone else published a version meanwhile: reload and look.") from exc
    return guideline
