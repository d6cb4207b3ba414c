class ApplicationError(Exception):
    """A domain rule refused the operation. `message` is shown to the user as it is."""

    def __init__(self, message: str, code: str = "invalid", *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
