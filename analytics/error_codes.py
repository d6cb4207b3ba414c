"""Why analytics refused something: the code of each ApplicationError it raises (forms and commands map codes, not
wording)."""

from enum import StrEnum


class ErrorCode(StrEnum):
    RANGE_REVERSED = "range_reversed"
    RANGE_IN_FUTURE = "range_in_future"
    RANGE_TOO_LONG = "range_too_long"
    UNKNOWN_ROLLUP = "unknown_rollup"
    # Exports and scheduled reports (analytics.exports, analytics.export_jobs, analytics.reports)
    EXPORT_NOT_VISIBLE = "export_not_visible"
    EXPORT_NO_PROGRAM = "export_no_program"
    EXPORT_EMPTY = "export_empty"
    EXPORT_BAD_FILTER = "export_bad_filter"
    EXPORT_NOT_READY = "export_not_ready"
    EXPORT_EXPIRED = "export_expired"
    REPORT_NOT_ALLOWED = "report_not_allowed"
