"""Why analytics refused something: the code of each ApplicationError it raises (forms and commands map codes, not
wording)."""

from enum import StrEnum


class ErrorCode(StrEnum):
    RANGE_REVERSED = "range_reversed"
    RANGE_IN_FUTURE = "range_in_future"
    RANGE_TOO_LONG = "range_too_long"
    UNKNOWN_ROLLUP = "unknown_rollup"
