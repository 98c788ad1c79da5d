"""The suppression API: thin views that validate, call one selector or service, and answer.

The relays' reads (the checks, the change feed, exports) are relay reads: they go to a read
replica when one is healthy (`compliance.replicas`); every other view reads the primary.
"""

from __future__ import annotations

import json

import orjson
from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import after_response
from compliance import selectors as core
from compliance.authentication import key_from_header
from compliance.errors import PermissionDenied, ServiceError
from compliance.key_permissions import KeyPermission
from compliance.parsers import BatchJSONParser, LimitedBodyParser, LimitedMultiPartParser
from compliance.permissions import PermissionRequired
from compliance.replicas import relay_alias, relay_read
from suppression import exporting, import_formats, selectors, services
from suppression.models import ImportJob, Origin, SuppressionEvent
from suppression.scopes import parse_scope
from suppression.serializers import (
    BatchCheckAnswer,
    BatchCheckRequest,
    ChangesAnswer,
    CheckAnswer,
    CheckQuery,
    ImportJobOut,
    LiftIn,
    ListQuery,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
)


def _stream_and_topic(api_key, data):
    tenant = core.tenant_for(api_key=api_key, slug=data.get("tenant"))
    stream = core.stream_of(tenant, data.get("stream"))
    return stream, core.topic_of(stream, data.get("topic"))


def _viewer(request) -> dict:
    """Serializer context: is the caller bound to a tenant (and so sees shared entries as their
    hash only)?"""
    return {"tenant_bound": request.auth is not None and request.auth.tenant_id is not None}


def _cacheable(response: Response) -> Response:
    # Relays may reuse an answer briefly; an opt-out then reaches them within this many seconds.
    response["Cache-Control"] = f"private, max-age={settings.SUPPRESSION_CHECK_CACHE_SECONDS}"
    return response


def _error(status_code: int, detail: str, code: str) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=status_code)
    if status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _check_one(request) -> HttpResponse:
    """`GET .../check`: relays ask once per message, so this answers without DRF's request
    wrapping, content negotiation and renderers, which cost more than the lookup. The key,
    scope, errors and answer are the API's own (same helpers, same JSON shapes)."""
    try:
        api_key = key_from_header(request)
    except AuthenticationFailed as exc:
        return _error(401, str(exc.detail), "authentication_failed")
    if api_key is None:
        return _error(401, "Authentication credentials were not provided.", "not_authenticated")
    if not api_key.allows(KeyPermission.SUPPRESSION_READ):
        return _error(
            403,
            f"this API key lacks the permission {KeyPermission.SUPPRESSION_READ}",
            "permission_denied",
        )
    params = request.GET
    address = params.get("address", "")
    try:
        if not address or len(address) > 512:
            raise ServiceError("'address' is required (at most 512 characters)", code="invalid")
        stream, topic = _stream_and_topic(api_key, params)
        verdict = relay_read(selectors.is_suppressed)(stream=stream, topic=topic, address=address)
    except ServiceError as exc:
        return _error(exc.status, exc.message, exc.code)
    answer = {
        "address": verdict.address,
        "suppressed": verdict.suppressed,
        "reason": verdict.reason,
        "scope": verdict.scope,
    }
    body = json.dumps(answer, separators=(",", ":"))
    return _cacheable(HttpResponse(body, content_type="application/json"))


class CheckView(APIView):
    parser_classes = [BatchJSONParser]
    permission_classes = [PermissionRequired]
    required_permissions = {
        "GET": KeyPermission.SUPPRESSION_READ,
        "POST": KeyPermission.SUPPRESSION_READ,
    }

    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET":
            return _check_one(request)
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(parameters=[CheckQuery], responses=CheckAnswer)
    def get(self, request):
        """Answered by `_check_one` (see `dispatch`); kept for the schema."""
        return _check_one(request._request)

    @extend_schema(request=BatchCheckRequest, responses=BatchCheckAnswer)
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ServiceError("the body must be a JSON object", code="invalid")
        # A batch of addresses, or of their keyed hashes from a relay that holds the key
        # (suppression/given_hashes.py); the answer names each the way it was asked.
        by_hash = "hashes" in data
        if by_hash and "addresses" in data:
            raise ServiceError("give 'addresses' or 'hashes', not both", code="invalid")
        name = "hashes" if by_hash else "addresses"
        batch = data.get(name)
        # Checked by hand rather than by a ListField: 100,000 field objects cost more than the
        # lookup itself. JSON strings are exactly str: their types are compared as a set.
        if not isinstance(batch, list) or not set(map(type, batch)) <= {str}:
            raise ServiceError(f"'{name}' must be a list of strings", code="invalid")
        if not all(isinstance(data.get(k), str | None) for k in ("stream", "topic", "tenant")):
            raise ServiceError("'stream', 'topic' and 'tenant' must be strings", code="invalid")
        stream, topic = _stream_and_topic(request.auth, data)
        # No cyclic collection among the batch's objects, none of which form cycles, until the
        # answer has gone out (compliance/after_response.py).
        after_response.pause_collector()
        if by_hash:
            verdict = relay_read(selectors.suppressed_hashes_among)(
                stream=stream, topic=topic, hashes_=batch
            )
        else:
            verdict = relay_read(selectors.suppressed_among)(
                stream=stream, topic=topic, addresses_=batch
            )
        # Rendered by orjson, not DRF's renderer: for a large batch, formatting each time
        # and encoding the answer with the standard library took a fifth of the request's
        # CPU. The same JSON: compact, UTF-8, times as datetime.isoformat() writes them.
        item = "hash" if by_hash else "address"
        body = orjson.dumps(
            {
                "checked": verdict.checked,
                "suppressed": verdict.suppressed,
                "invalid": [{item: given, "reason": why} for given, why in verdict.invalid],
            }
        )
        after_response.hold(verdict)  # its thousands of items are freed once it is sent
        return _cacheable(HttpResponse(body, content_type="application/json"))


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        # DRF checks a cursor's offset and direction but hands its position to the query as it
        # is: a position that is no id would fail there (a 500) instead of as an invalid cursor.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


class SuppressionListView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {
        "GET": KeyPermission.SUPPRESSION_READ,
        "POST": KeyPermission.SUPPRESSION_WRITE,
    }

    @extend_schema(
        operation_id="v1_suppressions_list",
        parameters=[
            ListQuery,
            OpenApiParameter("cursor", str, description="from a page's `next` or `previous` URL"),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": NewestFirst.max_page_size},
                description=f"entries per page, default {NewestFirst.page_size}",
            ),
        ],
        responses=SuppressionPage,
    )
    def get(self, request):
        query = ListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.filter_suppressions(
            selectors.suppressions_visible_to(core.visible_tenant_ids(request.auth)),
            **query.validated_data,
        )
        paginator = NewestFirst()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(
            SuppressionOut(page, many=True, context=_viewer(request)).data
        )

    @extend_schema(request=SuppressionIn, responses={201: SuppressionOut, 200: SuppressionOut})
    def post(self, request):
        body = SuppressionIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("tenant") == "*":
            if request.auth.tenant_id is not None:
                raise PermissionDenied("a key bound to a tenant cannot add shared entries")
            tenant = None
        else:
            tenant = core.tenant_for(api_key=request.auth, slug=data.get("tenant"))
        outcome = services.suppress(
            target=parse_scope(tenant, data.get("scope"), reason=data["reason"]),
            address=data["address"],
            reason=data["reason"],
            origin=Origin.API,
            evidence=request.auth,
            evidence_note=data.get("note", "") or f"API key {request.auth.name}",
            expires_at=data.get("expires_at"),
        )
        code = status.HTTP_201_CREATED if outcome.changed else status.HTTP_200_OK
        return Response(SuppressionOut(outcome.suppression).data, status=code)


class SuppressionDetailView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {
        "GET": KeyPermission.SUPPRESSION_READ,
        "DELETE": KeyPermission.SUPPRESSION_WRITE,
    }

    def _row(self, request, pk):
        rows = selectors.suppressions_visible_to(core.visible_tenant_ids(request.auth))
        return get_object_or_404(rows, pk=pk)

    @extend_schema(responses=SuppressionOut)
    def get(self, request, pk):
        return Response(SuppressionOut(self._row(request, pk), context=_viewer(request)).data)

    @extend_schema(
        request=LiftIn,
        parameters=[OpenApiParameter("reason", str, description="why it is lifted (required)")],
        responses={200: SuppressionOut},
    )
    def delete(self, request, pk):
        row = self._row(request, pk)
        if row.tenant_id is None and request.auth.tenant_id is not None:
            raise PermissionDenied("a key bound to a tenant cannot lift a shared entry")
        body = LiftIn(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        note = body.validated_data.get("reason") or request.query_params.get("reason", "")
        lifted = services.lift(suppression=row, note=note)
        return Response(SuppressionOut(lifted, context=_viewer(request)).data)


FEED_ACTIONS = {
    SuppressionEvent.Action.ADD: "added",
    SuppressionEvent.Action.READD: "added",
    SuppressionEvent.Action.REASON: "reason",
    SuppressionEvent.Action.LIFT: "lifted",
    SuppressionEvent.Action.ERASE: "erased",
}


class ChangesView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.SUPPRESSION_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"},
                description="cursor from the last answer's `next`",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 1000},
                description="at most 10000, default 1000",
            ),
        ],
        responses=ChangesAnswer,
    )
    def get(self, request):
        cursor = selectors.Cursor.parse(request.query_params.get("since"))
        try:
            limit = int(request.query_params.get("limit", 1000))
        except ValueError:
            raise ServiceError("limit must be a whole number", code="invalid") from None
        if not 1 <= limit <= 10_000:
            raise ServiceError("limit must be between 1 and 10000", code="invalid")
        tenant_ids = core.visible_tenant_ids(request.auth)
        events, next_cursor = relay_read(selectors.changes_since)(
            cursor, limit=limit, tenant_ids=tenant_ids
        )
        # A tenant sees changes of shared entries by hash only (README, tenants).
        bound = tenant_ids is not None
        return Response(
            {
                "changes": [
                    {
                        "cursor": str(selectors.Cursor(e.txid, e.id)),
                        "action": FEED_ACTIONS[e.action],
                        "suppressed": e.action != SuppressionEvent.Action.LIFT,
                        "address_hash": bytes(e.address_hash).hex(),
                        "address": None
                        if bound and e.current.tenant_id is None
                        else e.current.address,
                        "tenant": e.current.tenant.slug if e.current.tenant else None,
                        "scope": e.current.scope_label,
                        "reason": e.reason,
                        "at": e.occurred_at.isoformat(),
                    }
                    for e in events
                ],
                "next": str(next_cursor),
            }
        )


class CsvUploadParser(LimitedBodyParser):
    """A CSV file as the whole request body (`Content-Type: text/csv`), refused from its
    Content-Length when it is larger than IMPORT_MAX_BYTES."""

    media_type = "text/csv"
    what = "a CSV file"

    def limit(self) -> int:
        return settings.IMPORT_MAX_BYTES


class CsvFormParser(LimitedMultiPartParser):
    """The CSV as a multipart `file` field; a body over IMPORT_MAX_BYTES (and a little room for
    the form around it) is refused before it is read."""

    what = "an upload"

    def limit(self) -> int:
        return settings.IMPORT_MAX_BYTES + 64 * 1024


class ImportView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"POST": KeyPermission.SUPPRESSION_WRITE}
    parser_classes = [CsvUploadParser, CsvFormParser]

    @extend_schema(
        request={
            "text/csv": {"type": "string", "format": "binary"},
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        },
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(import_formats.FORMATS),
                description="one of the import formats; recognised from the header row when absent",
            ),
            OpenApiParameter("filename", str, description="the file's name, for the job's record"),
            OpenApiParameter("tenant", str, description="tenant slug, or * for shared entries"),
        ],
        responses={202: ImportJobOut},
    )
    def post(self, request):
        if isinstance(request.data, bytes):
            content, filename = request.data, request.query_params.get("filename", "upload.csv")
        else:
            upload = request.data.get("file")
            if upload is None:
                raise ServiceError(
                    "send the CSV as the body (text/csv) or as a 'file' field", code="no_file"
                )
            content, filename = upload.read(), upload.name
        if not content:
            raise ServiceError("the file is empty", code="empty")
        slug = request.query_params.get("tenant")
        if slug == "*" and request.auth.tenant_id is None:
            tenant = None
        else:
            tenant = core.tenant_for(api_key=request.auth, slug=slug)
        job = services.queue_import(
            content=content,
            filename=filename,
            tenant=tenant,
            format_name=request.query_params.get("format"),
        )
        job.refresh_from_db()
        return Response(ImportJobOut(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.SUPPRESSION_WRITE}

    @extend_schema(responses=ImportJobOut)
    def get(self, request, pk):
        jobs = ImportJob.objects.all()
        tenant_ids = core.visible_tenant_ids(request.auth)
        if tenant_ids is not None:
            jobs = jobs.filter(tenant_id__in=tenant_ids)
        return Response(ImportJobOut(get_object_or_404(jobs, pk=pk)).data)


class ExportView(APIView):
    permission_classes = [PermissionRequired]
    required_permissions = {"GET": KeyPermission.SUPPRESSION_READ}

    @extend_schema(
        parameters=[
            ListQuery,
            OpenApiParameter(
                "format",
                str,
                enum=list(exporting.FORMATS),
                description="csv (addresses) or hashes (keyed hashes only)",
            ),
        ],
        responses={(200, "text/csv"): {"type": "string"}},
    )
    def get(self, request):
        fmt = request.query_params.get("format", "csv")
        if fmt not in exporting.FORMATS:
            raise ServiceError(
                f"format must be one of {', '.join(exporting.FORMATS)}", code="invalid"
            )
        query = ListQuery(data={k: v for k, v in request.query_params.items() if k != "format"})
        query.is_valid(raise_exception=True)
        filters = {
            "active": True,
            **{k: v for k, v in query.validated_data.items() if v is not None},
        }
        tenant_ids = core.visible_tenant_ids(request.auth)
        if fmt == "csv" and tenant_ids is not None:
            # Addresses only of the tenant's own entries; shared ones travel as hashes only.
            rows = selectors.suppressions_of(tenant_ids)
        else:
            rows = selectors.suppressions_visible_to(tenant_ids)
        rows = selectors.filter_suppressions(rows, **filters).order_by("id")
        # Streamed after this returns, so bound to its database now: a replica that has just
        # answered (a stream cannot move to the primary halfway).
        rows = rows.using(relay_alias())
        response = StreamingHttpResponse(
            exporting.export_lines(rows, fmt=fmt), content_type="text/csv; charset=utf-8"
        )
        name = "suppressions-hashes.csv" if fmt == "hashes" else "suppressions.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
