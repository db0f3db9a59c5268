"""The plant-facing API: post an unloading."""

import json
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.ingest import IngestResult, UnloadingConflict, ingest_unloading
from labeling.lines import POST_UNLOADINGS, may
from labeling.manifest import UnloadingManifestSerializer
from scrapannot.api import HasRole
from scrapannot.roles import Role

MANIFEST_FIELD = "manifest"


class UnloadingCreateInputSerializer(serializers.Serializer):
    """Multipart body: `manifest` (the JSON of docs/unloading-format.md, as a text field or a
    file) and one file part per frame, named by the frame's `file`."""

    manifest = serializers.CharField(
        help_text="The unloading manifest as JSON text (or a file part of that name): "
        "railcar, line, camera and frames, see docs/unloading-format.md."
    )
    frame_file = serializers.FileField(
        required=False,
        help_text="One part per frame, named by the frame's `file` in the manifest (this field "
        "name stands for them all).",
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the request was refused.")


class RejectedFrameSerializer(serializers.Serializer):
    file = serializers.CharField()
    reason = serializers.CharField()
    detail = serializers.CharField()


class UnloadingCreateOutputSerializer(serializers.Serializer):
    railcar = serializers.UUIDField(source="railcar.uid")
    created = serializers.BooleanField()
    frames = serializers.IntegerField()
    eligible = serializers.IntegerField()
    layers = serializers.IntegerField()
    rejected = RejectedFrameSerializer(many=True)
    repaired = serializers.IntegerField(help_text="Frames this re-post filled in.")


def not_your_line(line: str) -> Response:
    """403 for a plant system posting for a line it is not granted (or that does not exist:
    the two read alike, so a token cannot probe which lines exist)."""
    return Response(
        {"detail": f"This account may not post unloadings for line {line!r}: the line is not "
         "granted to it (an admin grants lines, see the README)."},
        status=status.HTTP_403_FORBIDDEN,
    )  # fmt: skip


def read_manifest(request: Request) -> Any:
    raw: Any = request.data.get(MANIFEST_FIELD)
    if isinstance(raw, UploadedFile):
        raw = raw.read()
    if raw is None or raw == "":
        raise serializers.ValidationError({MANIFEST_FIELD: ["This field is required."]})
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: a nesting bomb ("[[[[...") exhausts the parser's stack.
        message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise serializers.ValidationError({MANIFEST_FIELD: [f"Not valid JSON: {message}"]}) from exc


class UnloadingCreateApi(APIView):
    allowed_roles = (Role.PLANT_SYSTEM, Role.ADMIN)
    permission_classes = [HasRole]
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": UnloadingCreateInputSerializer},
        responses={
            201: UnloadingCreateOutputSerializer,
            200: OpenApiResponse(UnloadingCreateOutputSerializer, "already ingested"),
            400: OpenApiResponse(
                description="malformed manifest or body (field errors, or `detail`); nothing "
                "was written"
            ),
            401: OpenApiResponse(ErrorSerializer, "no or bad token"),
            403: OpenApiResponse(
                ErrorSerializer, "not a plant system or an admin, or a line not granted"
            ),
            409: OpenApiResponse(ErrorSerializer, "same railcar and start, different manifest"),
            415: OpenApiResponse(ErrorSerializer, "not a multipart body"),
            503: OpenApiResponse(ErrorSerializer, "database unavailable; retry (Retry-After)"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = UnloadingManifestSerializer(data=read_manifest(request))
        serializer.is_valid(raise_exception=True)
        manifest = serializer.validated_data
        if not may(request.user, POST_UNLOADINGS, manifest["line"]):
            return not_your_line(manifest["line"])
        files = frame_files(request, {frame["file"] for frame in manifest["frames"]})
        try:
            result: IngestResult = ingest_unloading(
                manifest=manifest, sources=files, actor=request.user
            )
        except UnloadingConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            UnloadingCreateOutputSerializer(result).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


def frame_files(request: Request, listed: set[str]) -> dict[str, UploadedFile]:
    """The frame parts of a multipart body, by name; 400 for a part sent twice or not listed."""
    repeated = sorted(n for n in request.FILES if len(request.FILES.getlist(n)) > 1)
    if repeated:
        raise serializers.ValidationError(
            {"files": [f"Files sent more than once: {', '.join(repeated[:20])}"]}
        )
    files = {name: request.FILES[name] for name in request.FILES if name != MANIFEST_FIELD}
    unexpected = sorted(set(files) - listed)
    if unexpected:
        raise serializers.ValidationError(
            {"files": [f"Files not listed in the manifest: {', '.join(unexpected[:20])}"]}
        )
    return files
