"""How the engine's processes write logs: readable text lines (the default), or with
DEX_LOG_FORMAT=json one JSON object per line, for a log collector.

A JSON line has `ts` (UTC, ISO 8601, milliseconds), `level`, `logger` and `message`, then:

* `orderId` when the record is about an order: log it with `extra={"order_id": …}`;
* the record's own fields as keys of the line, when it carries some: either its message is a
  mapping (its items are the fields; the line's `message` is the mapping's `message` attribute,
  e.g. functions/route.py's routing decision, whose `str()` is its one-line text form), or it was
  logged with `extra={"fields": {…}}`. A field never replaces one of the keys above;
* `exception`: the traceback, as one string, when the record carries one (`stack` likewise).

In JSON mode every line a process writes is JSON, not only its log records: what is printed on
stdout or stderr (start-up notices, the command line's error line) becomes an object of logger
`stdout` (level INFO) or `stderr` (level ERROR), warnings go through logging (`py.warnings`) and an
uncaught exception is logged with its traceback.

Where it is set up: worker processes and the command line's start by `configure_process_logging`;
the web process's records by Litestar's LoggingConfig (`litestar_formatters`, local_runtime/app.py),
uvicorn's by propagating to the root logger (`uvicorn_log_config`).
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""Worker processes' text lines (as before JSON existed)."""
LITESTAR_TEXT_FORMAT = "%(levelname)s - %(asctime)s - %(name)s - %(module)s - %(message)s"
"""The web process's text lines: Litestar's standard format."""
JSON_LINE_START = '{"ts":'
"""How every line JsonFormatter writes starts: a stream wrapper passes such a line on as it is."""
_RESERVED = frozenset({"ts", "level", "logger", "message", "orderId", "exception", "stack"})


def _fallback(value: Any) -> Any:
    return str(value)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(ts: float, level: str, logger: str, message: str, order_id: Any = None,
              fields: Mapping[str, Any] | None = None, exception: str | None = None,
              stack: str | None = None) -> str:
    """One log line as a JSON object (no newline)."""
    line: dict[str, Any] = {"ts": _timestamp(ts), "level": level, "logger": logger, "message": message}
    if order_id is not None:
        line["orderId"] = str(order_id)
    if fields:
        for key, value in fields.items():
            if str(key) not in _RESERVED:
                line[str(key)] = value
    if exception:
        line["exception"] = exception
    if stack:
        line["stack"] = stack
    try:
        return _encoder.encode(line).decode()
    except (TypeError, ValueError, OverflowError):  # a field msgspec cannot write: keep the line
        return _encoder.encode({**line, **{k: repr(v) for k, v in line.items() if k not in _RESERVED}}).decode()


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line (see the module's docstring for the keys)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if isinstance(record.msg, Mapping) and not record.args:
            fields, message = record.msg, str(getattr(record.msg, "message", "") or "")
        else:
            message = record.getMessage()
        exception = None
        if record.exc_info:
            if not record.exc_text:  # cached, as logging.Formatter does
                record.exc_text = self.formatException(record.exc_info)
            exception = record.exc_text
        elif record.exc_text:
            exception = record.exc_text
        stack = self.formatStack(record.stack_info) if record.stack_info else None
        return json_line(record.created, record.levelname, record.name, message, getattr(record, "order_id", None),
                         fields if isinstance(fields, Mapping) else None, exception, stack)


class JsonLines(io.TextIOBase):
    """A text stream (stdout or stderr in JSON mode) that writes each line it is given as a JSON object
    of logger `name`, unless the line already is one of ours (it starts with JSON_LINE_START).
    Lines are written whole, one `write` each, so processes sharing the stream do not cut into
    each other's lines."""

    def __init__(self, target: TextIO, name: str, level: str) -> None:
        super().__init__()
        self.target = target
        self.name = name
        self.level = level
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            if "\n" in self._partial:
                *lines, self._partial = self._partial.split("\n")
                self.target.write("".join(self._line(line) + "\n" for line in lines if line.strip()))
                self.target.flush()  # now, in one piece: a buffer filling up could split a line in two writes
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def close(self) -> None:  # the process's stream is not ours to close; write what is left
        with self._lock:
            if self._partial.strip():
                self.target.write(self._line(self._partial) + "\n")
            self._partial = ""
            self.target.flush()

    def _line(self, line: str) -> str:
        if line.startswith(JSON_LINE_START):
            return line
        return json_line(datetime.now(UTC).timestamp(), self.level, self.name, line.rstrip("\r"))


def _log_uncaught(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("engine").critical("uncaught exception", exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("engine").critical("uncaught exception in thread %s", name,
                                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def json_streams() -> None:
    """From now on, this process's stdout and stderr carry JSON lines only (idempotent)."""
    if not isinstance(sys.stdout, JsonLines):
        sys.stdout = JsonLines(sys.stdout, "stdout", "INFO")
    if not isinstance(sys.stderr, JsonLines):
        sys.stderr = JsonLines(sys.stderr, "stderr", "ERROR")
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def configure_process_logging(level: str, log_format: str) -> None:
    """The logging of an engine process (a worker process; the web process until Litestar's config
    takes the root logger over): records to stderr, as text or JSON lines."""
    if log_format == "json":
        json_streams()
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler], force=True)
    else:
        logging.basicConfig(level=level, format=TEXT_FORMAT, stream=sys.stderr)
    logging.getLogger("saq").setLevel(logging.WARNING)


def litestar_formatters(log_format: str) -> dict[str, dict[str, Any]]:
    """LoggingConfig(formatters=…) for the web process: Litestar's standard text, or JSON lines."""
    if log_format == "json":
        return {"standard": {"()": JsonFormatter}}
    return {"standard": {"format": LITESTAR_TEXT_FORMAT}}


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn.Config(log_config=…): its own handlers and formats for text (as before); for JSON none
    (None), so its records reach the root logger's JSON handler."""
    if log_format == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
