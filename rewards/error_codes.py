"""Why rewards refused an operation: the code of each ApplicationError it raises. Forms and the API map codes to
fields and responses; the wording of a message is for people and may change."""

from enum import StrEnum


class ErrorCode(StrEnum):
    ADDRESS = "address"
    BAD_TRANSITION = "bad_transition"
    CODES_EXHAUSTED = "codes_exhausted"
    DEMO_DATA = "demo_data"
    DUPLICATE_LINE = "duplicate_line"
    EMPTY = "empty"
    EVENT_NOT_STARTED = "event_not_started"
    NOT_AN_EVENT = "not_an_event"
    ATTENDANCE_RECORDED = "attendance_recorded"
    ENCODING = "encoding"
    FORBIDDEN = "forbidden"
    INACTIVE = "inactive"
    INSUFFICIENT_POINTS = "insufficient_points"
    KEY_REUSED = "key_reused"
    NOT_CODE_REWARD = "not_code_reward"
    OTHER_PROGRAM = "other_program"
    OUT_OF_STOCK = "out_of_stock"
    OWNER_ONLY = "owner_only"
    PAID_BY = "paid_by"
    QUANTITY = "quantity"
    REASON_REQUIRED = "reason_required"
    RESTRICTED = "restricted"
    TOO_LONG = "too_long"
