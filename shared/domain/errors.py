"""The errors of input the engine refuses: a field at fault, and the refusal a client is answered with."""


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InputError(Exception):
    """What the client sent cannot become an order. `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, field: str | None, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, str | int | None]:
        body: dict[str, str | int | None] = {"error": self.message, "field": self.field}
        if self.retry_after_s is not None:
            body["retryAfter"] = self.retry_after_s
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}
