"""The one error type for input the engine refuses: it names the field at fault."""


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
