"""Why partners refused an operation: the code of each ApplicationError it raises. Forms and the API map codes to
fields and responses; the wording of a message is for people and may change."""

from enum import StrEnum


class ErrorCode(StrEnum):
    ALREADY_MEMBER = "already_member"
    ALREADY_MEMBER_ELSEWHERE = "already_member_elsewhere"
    BAD_TRANSITION = "bad_transition"
    DEMO_CONFLICT = "demo_conflict"
    DUPLICATE_LEGAL_ID = "duplicate_legal_id"
    EXPIRED = "expired"
    FORBIDDEN = "forbidden"
    HAS_ACCOUNT = "has_account"
    INVALID = "invalid"
    INVALID_EMAIL = "invalid_email"
    INVALID_NAME = "invalid_name"
    INVALID_PASSWORD = "invalid_password"
    INVALID_POLICY = "invalid_policy"
    INVALID_SCALE = "invalid_scale"
    LEFT = "left"
    NOT_ACCOUNT_MANAGER = "not_account_manager"
    NOT_INVITED = "not_invited"
    OWN_PARENT = "own_parent"
    PARTNER_CLOSED = "partner_closed"
    REVOKED = "revoked"
    SELF_DEACTIVATE = "self_deactivate"
    SELF_DEMOTE = "self_demote"
    STAFF_CANNOT_JOIN = "staff_cannot_join"
    UNKNOWN = "unknown"
    USED = "used"
    WRONG_USER = "wrong_user"
