"""Validation of an unloading manifest (docs/unloading-format.md).

One serializer for the API and the `ingest` command, so both give the same field-level errors.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_PRINTABLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/#-]*$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
# A frame's file name: no folders, no parent references, no hidden files, no control characters.
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.() -]{0,199}$")
_MAX_COORD = 100_000
# Real time zones run from -12:00 to +14:00; PostgreSQL refuses offsets from 16 h on.
MAX_UTC_OFFSET = timedelta(hours=14)
# A camera frame from before 1970 or after 2999 is a clock fault, not an unloading.
MIN_YEAR, MAX_YEAR = 1970, 2999


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """ISO 8601 with an explicit time zone: a naive time from a plant clock is ambiguous."""

    default_error_messages = {
        "invalid": "Expected an ISO 8601 date-time with a time zone, e.g. 2026-11-21T08:00:00Z.",
        "offset": "The time zone offset must lie within -14:00 and +14:00.",
        "range": f"Expected a time between the years {MIN_YEAR} and {MAX_YEAR}.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str) or len(data) > 40:
            self.fail("invalid")
        try:
            value = parse_datetime(data)
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            self.fail("invalid")
        offset = value.utcoffset()
        if offset is None or abs(offset) > MAX_UTC_OFFSET:
            self.fail("offset")
        try:
            # Year 9999 at -01:00 or year 1 at +01:00 falls outside what a datetime (and
            # PostgreSQL's timestamptz as Django stores it) can hold once it is in UTC.
            utc = value.astimezone(UTC)
        except OverflowError:
            self.fail("range")
        if not MIN_YEAR <= utc.year <= MAX_YEAR:
            self.fail("range")
        return value

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


@extend_schema_field(
    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4, "nullable": True}
)
class BoxField(serializers.Field):
    default_error_messages = {
        "invalid": "Expected [x_min, y_min, x_max, y_max] in pixels with x_min < x_max and "
        "y_min < y_max.",
    }

    def to_internal_value(self, data: Any) -> list[float]:
        if not isinstance(data, list) or len(data) != 4:
            self.fail("invalid")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
            self.fail("invalid")
        box = [float(v) for v in data]
        if not all(math.isfinite(v) and -_MAX_COORD <= v <= _MAX_COORD for v in box):
            self.fail("invalid")
        if not (box[0] < box[2] and box[1] < box[3]):
            self.fail("invalid")
        return box

    def to_representation(self, value: list[float]) -> list[float]:
        return value


def _identifier(max_length: int, *, required: bool = True) -> serializers.RegexField:
    return serializers.RegexField(
        _PRINTABLE_ID,
        max_length=max_length,
        required=required,
        error_messages={"invalid": "Letters, digits, spaces and . _ : / # - only."},
    )


class FrameEntrySerializer(serializers.Serializer):
    file = serializers.RegexField(
        _FILE_NAME,
        error_messages={"invalid": "A plain file name: no folders, no '..', no hidden files."},
    )
    sha256 = serializers.RegexField(_SHA256, error_messages={"invalid": "64 hex characters."})
    captured_at = AwareDateTimeField()
    camera = _identifier(64, required=False)
    magnet_box = BoxField(required=False, allow_null=True)
    railcar_box = BoxField(required=False, allow_null=True)
    layer = serializers.IntegerField(min_value=1, max_value=10_000, required=False)

    def validate_file(self, value: str) -> str:
        if ".." in value:
            raise serializers.ValidationError("A plain file name: no folders, no '..'.")
        return value

    def validate_sha256(self, value: str) -> str:
        return value.lower()


class UnloadingManifestSerializer(serializers.Serializer):
    railcar = _identifier(64)
    line = _identifier(32)
    camera = _identifier(64)
    frames = FrameEntrySerializer(many=True, allow_empty=False)

    def validate_frames(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = settings.SCRAPANNOT["MAX_FRAMES_PER_UNLOADING"]
        if len(frames) > limit:
            raise serializers.ValidationError(f"At most {limit} frames per unloading.")
        seen: set[str] = set()
        for position, frame in enumerate(frames):
            if frame["file"] in seen:
                raise serializers.ValidationError(
                    f"frames[{position}].file: {frame['file']!r} is listed twice."
                )
            seen.add(frame["file"])
            if position and frame["captured_at"] < frames[position - 1]["captured_at"]:
                raise serializers.ValidationError(
                    f"frames[{position}].captured_at: frames must be in time order."
                )
        named = [f for f in frames if "layer" in f]
        if named and len(named) != len(frames):
            raise serializers.ValidationError(
                "Either every frame names its layer, or none does and boxes define the layers."
            )
        if named:
            indices = sorted({f["layer"] for f in frames})
            if indices != list(range(1, len(indices) + 1)):
                raise serializers.ValidationError("Layer numbers must run 1, 2, ... without gaps.")
        elif not any(f.get("magnet_box") and f.get("railcar_box") for f in frames):
            raise serializers.ValidationError(
                "No frame names a layer and no frame has both a magnet box and a railcar box: "
                "the layers cannot be found."
            )
        return frames
