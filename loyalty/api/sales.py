"""Sell-out through the API: a distributor's or the ERP's batches of sale lines, and the imports they make.

A batch goes through the file import's engine (loyalty.services.sellout.run.import_lines): the same checks,
matching, rules, returns, claim confirmation and ledger, as one import of the client's sales source, so it shows in
the admin's import list. Each line is idempotent by its external id (a line the source already has is a
"duplicate" and posts nothing), the whole request by its Idempotency-Key. A client bound to a distributor reports
only that distributor's and its dealers' lines. Clients see the imports of their own source only.
"""

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, ListApiView, StrictSerializer, page_response, problem_responses
from integrations.api.problems import Problem
from integrations.constants import Scope
from loyalty.common.errors import ApplicationError
from loyalty.constants import ImportStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import SalesImport, SalesSource
from loyalty.services.sellout.parse import SaleRow
from loyalty.services.sellout.run import MAX_BATCH_LINES, LineResult, import_lines

ERRORS_SHOWN = 100  # an import's first errors in its status


def _client_source(view: ApiView) -> SalesSource | None:
    """The sales source the calling client's lines are recorded under (None: it has none in its program)."""
    client = view.caller.client
    source = client.sales_source
    if source is None or source.program_id != view.caller.program.pk:
        return None
    return source


def _client_imports(view: ApiView):
    """The imports a client may see: its own source's (file or API), none without a source."""
    source = _client_source(view)
    if source is None:
        return SalesImport.objects.none()
    return SalesImport.objects.filter(source=source)


# Batches -------------------------------------------------------------------------------------------------------------

_BATCH_EXAMPLE = {
    "lines": [
        {"external_id": "INV-2026-0042-1", "partner": "DE811907980", "member": "sophie.turner@northwater.example",
         "sku": "AQ-200", "quantity": "3", "amount": "1199.70", "invoice_number": "INV-2026-0042",
         "invoice_date": "2026-11-30"},
        {"external_id": "INV-2026-0042-2", "partner": "C-1042", "sku": "AQ-SALT", "quantity": "10", "amount": "89.50",
         "invoice_number": "INV-2026-0042", "invoice_date": "2026-11-30"},
        {"external_id": "CN-2026-0007-1", "partner": "DE811907980", "sku": "AQ-200", "quantity": "-1",
         "amount": "-399.90", "invoice_date": "2026-12-02", "returns_external_id": "INV-2026-0042-1"},
    ]
}  # fmt: skip
_RESULT_EXAMPLE = {
    "import_id": 1234, "status": "done", "accepted": 2, "duplicates": 0, "errors": 1, "points": 360,
    "message": "3 lines: 2 new, 0 already imported, 1 with errors; 360 points posted; 1 return took back 120 points.",
    "results": [
        {"index": 0, "external_id": "INV-2026-0042-1", "result": "accepted", "points": 360},
        {"index": 1, "external_id": "INV-2026-0042-2", "result": "error",
         "errors": [{"field": "sku", "code": "unknown_sku", "reason": "is not a SKU of the catalogue"}]},
        {"index": 2, "external_id": "CN-2026-0007-1", "result": "accepted", "points": -120},
    ],
}  # fmt: skip
_LINE_CODES = (
    "missing, too_long, repeated, invalid_number, zero, too_many_decimals, too_large, invalid_date, in_future, "
    "too_old, not_a_return, unknown_partner, partner_not_allowed, unknown_sku, unknown_member, member_elsewhere, "
    "member_left, return_unmatched, return_mismatch, return_too_much"
)


class _Text(serializers.CharField):
    """Text that can be stored: JSON may carry lone surrogates ("\\ud800"), which no database text takes."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            value.encode()
        except UnicodeEncodeError:
            raise serializers.ValidationError("Not valid Unicode text.", code="invalid") from None
        return value


@extend_schema_field({"type": "string", "enum": [LineResult.ACCEPTED, LineResult.DUPLICATE, LineResult.ERROR]})
class _ResultField(serializers.CharField):
    """A line's result, documented as an inline enum (a named one would collide with other views' "result")."""


class SalesBatchView(ApiView):
    """Report up to 1,000 sell-out lines: each is checked, matched and paid as a line of a sell-out file, and
    the answer says what became of each, in the lines' order."""

    scope = Scope.SALES_WRITE

    class Input(StrictSerializer):
        class Line(StrictSerializer):
            external_id = _Text(
                help_text="The line's own id in your system (at most 80 characters): a line is imported once per id, "
                "compared without case, spaces and dashes; sent again it is a duplicate and posts nothing."
            )
            partner = _Text(
                help_text="The partner who sold: its legal id (VAT number), or your customer code for it (an alias "
                "of your sales source)."
            )
            member = _Text(
                required=False,
                allow_blank=True,
                default="",
                help_text="The salesperson: a member's e-mail address or member code (M123). Empty: the partner's "
                "account is credited.",
            )
            sku = _Text(help_text="The product's SKU.")
            quantity = serializers.DecimalField(
                max_digits=None,
                decimal_places=None,
                help_text="Units sold (a string or a number), at most 3 decimals, not 0; negative for a return (a "
                "credit note).",
            )
            amount = serializers.DecimalField(
                max_digits=None,
                decimal_places=None,
                help_text="The line's net amount (a string or a number; rounded to cents).",
            )
            invoice_number = _Text(
                required=False,
                allow_blank=True,
                default="",
                help_text="At most 60 characters. Confirms the partner's waiting claims of the same invoice; a "
                "return without returns_external_id is matched by it.",
            )
            invoice_date = serializers.DateField(help_text="Not in the future, not before 2000.")
            returns_external_id = _Text(
                required=False,
                allow_blank=True,
                default="",
                help_text="For a return: the external id of the line it returns (imported earlier from your source).",
            )

        lines = Line(many=True, allow_empty=False, max_length=MAX_BATCH_LINES)

    class Output(serializers.Serializer):
        class Result(serializers.Serializer):
            class Error(serializers.Serializer):
                field = serializers.CharField()
                code = serializers.CharField(help_text=f"One of: {_LINE_CODES}.")
                reason = serializers.CharField()

            index = serializers.IntegerField(help_text="The line's position in the batch, from 0.")
            external_id = serializers.CharField()
            result = _ResultField(
                help_text="accepted: imported now; duplicate: imported before (posts nothing); error: refused."
            )
            points = serializers.IntegerField(
                required=False, help_text="Accepted lines: the points the line paid (taken back, for a return)."
            )
            errors = Error(many=True, required=False, help_text="Refused lines: every reason.")

        import_id = serializers.IntegerField(help_text="The import this batch made: GET /sales/imports/{id}/.")
        status = serializers.CharField(help_text="Always done: a batch that fails is answered with 503.")
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        errors = serializers.IntegerField()
        points = serializers.IntegerField(help_text="The points the batch's new lines earned (returns aside).")
        message = serializers.CharField()
        results = Result(many=True)

    @extend_schema(
        operation_id="sales_batch_create",
        request=Input,
        responses={
            201: Output,
            **problem_responses(
                422, 503,
                s400="Bad JSON, wrong types, unknown or missing fields, no lines or more than 1,000 (field lines)",
                s422="codes: no_sales_source (the client has no sales source), idempotency_key_reused",
                s503="codes: import_busy (another import of the program is running: retry after Retry-After), "
                     "import_failed (an unexpected error: nothing was posted, send the batch again)",
            ),
        },
        examples=[
            OpenApiExample("Two sales and a return", value=_BATCH_EXAMPLE, request_only=True),
            OpenApiExample("What became of each line", value=_RESULT_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["Sales"],
    )  # fmt: skip
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        source = _client_source(self)
        if source is None:
            raise Problem(
                422, "no_sales_source", "This client has no sales source in its program: a program manager sets one "
                "on the client in the admin."
            )  # fmt: skip
        client = self.caller.client
        try:
            batch = import_lines(
                source=source,
                rows=[SaleRow(**line) for line in data.validated_data["lines"]],
                by=self.caller.actor,
                name=f"API batch from {client.name}",
                distributor_id=client.distributor_id,
            )
        except ApplicationError as exc:
            if exc.code != ErrorCode.RULES_BUSY:
                raise
            raise Problem(
                503, "import_busy", exc.message, headers={"Retry-After": str(exc.extra["retry_after"])}
            ) from None
        imported = batch.sales_import
        if imported.status != ImportStatus.DONE:
            raise Problem(503, "import_failed", imported.message)
        results = []
        for line in batch.lines:
            result = {"index": line.index, "external_id": line.external_id, "result": line.result}
            if line.points is not None:
                result["points"] = line.points
            if line.errors:
                result["errors"] = line.errors
            results.append(result)
        out = {
            "import_id": imported.pk,
            "status": imported.status,
            "accepted": batch.count(LineResult.ACCEPTED),
            "duplicates": batch.count(LineResult.DUPLICATE),
            "errors": batch.count(LineResult.ERROR),
            "points": imported.points_posted,
            "message": imported.message,
            "results": results,
        }
        location = reverse("api_sales_import", args=[imported.pk])
        return Response(self.Output(out).data, status=201, headers={"Location": location})


# Imports -------------------------------------------------------------------------------------------------------------

_STATUSES = ", ".join(ImportStatus.values)
_IMPORT_EXAMPLE = {
    "id": 1234, "name": "API batch from Northwater ERP", "status": "done", "lines": 3, "processed_lines": 3,
    "percent_done": 100, "new_lines": 2, "duplicate_lines": 0, "error_rows": 1, "points": 360,
    "message": "3 lines: 2 new, 0 already imported, 1 with errors; 360 points posted.",
    "created_at": "2026-12-02T09:30:00Z", "started_at": "2026-12-02T09:30:00Z", "finished_at": "2026-12-02T09:30:01Z",
}  # fmt: skip


class SalesImportListView(ListApiView):
    """The imports of the client's sales source, newest first: its API batches and the files uploaded for it."""

    scope = Scope.SALES_WRITE

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField(source="original_name", help_text="The file's name, or the API batch's.")
        status = serializers.CharField(help_text=f"One of: {_STATUSES}.")
        lines = serializers.IntegerField(source="total_rows")
        processed_lines = serializers.IntegerField(source="processed_rows")
        percent_done = serializers.IntegerField()
        new_lines = serializers.IntegerField()
        duplicate_lines = serializers.IntegerField()
        error_rows = serializers.IntegerField()
        points = serializers.IntegerField(source="points_posted")
        message = serializers.CharField()
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="sales_imports_list",
        responses={200: Output(many=True), **problem_responses(404, s404="A bad cursor")},
        examples=[OpenApiExample("Imports", value=_IMPORT_EXAMPLE, response_only=True, status_codes=["200"])],
        tags=["Sales"],
    )
    def get(self, request):
        return page_response(self, _client_imports(self).defer("errors"), self.Output)


class SalesImportView(ApiView):
    """One import of the client's sales source: how far it got, its counts and message, and its first errors
    (line: the file's line number, the header being line 1, or the line's index in an API batch)."""

    scope = Scope.SALES_WRITE

    class Output(serializers.Serializer):
        class Error(serializers.Serializer):
            line = serializers.IntegerField()
            field = serializers.CharField(source="column", help_text="The file's column heading, or the API field.")
            code = serializers.CharField(default="invalid")
            value = serializers.CharField(allow_blank=True)
            reason = serializers.CharField()

        id = serializers.IntegerField()
        name = serializers.CharField(source="original_name", help_text="The file's name, or the API batch's.")
        status = serializers.CharField(help_text=f"One of: {_STATUSES}.")
        lines = serializers.IntegerField(source="total_rows")
        processed_lines = serializers.IntegerField(source="processed_rows")
        percent_done = serializers.IntegerField()
        new_lines = serializers.IntegerField()
        duplicate_lines = serializers.IntegerField()
        error_rows = serializers.IntegerField()
        points = serializers.IntegerField(source="points_posted")
        message = serializers.CharField()
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)
        errors = Error(many=True, help_text=f"The first {ERRORS_SHOWN} errors.")

    @extend_schema(
        operation_id="sales_import_read",
        responses={200: Output, **problem_responses(404, s404="Not an import of this client's sales source")},
        examples=[OpenApiExample("An API batch's import", value={**_IMPORT_EXAMPLE, "errors": [
            {"line": 1, "field": "sku", "code": "unknown_sku", "value": "AQ-999",
             "reason": "is not a SKU of the catalogue"}]}, response_only=True, status_codes=["200"])],
        tags=["Sales"],
    )  # fmt: skip
    def get(self, request, pk: int):
        sales_import = _client_imports(self).filter(pk=pk).first()
        if sales_import is None:
            raise Problem(404, "not_found", "No import of this client's sales source has this id.")
        sales_import.errors = (sales_import.errors or [])[:ERRORS_SHOWN]  # shown, not saved
        return Response(self.Output(sales_import).data)
