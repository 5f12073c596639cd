"""SAQ's own queue dashboard under /saq, for development: the engine's queues (one per function,
and the maintenance queue of the reconciler's cron), their workers, and their queued and active
jobs, with SAQ's retry and abort buttons.

On only with DEX_SAQ_UI=true (and the SAQ queue backend); otherwise /saq does not exist (404).

It is SAQ's page and script (saq/web/static, saq.web.common), served by Litestar routes that
answer SAQ's JSON API from the engine's queue objects: SAQ's ready-made apps need Starlette or
aiohttp, which the engine does not otherwise use.

Behind an API key, as /api is: the header `X-API-Key`, or `?apiKey=` (a browser cannot set a
header). SAQ's script calls its API with plain `fetch`, which sends neither; so a page answered
for a key also sets a cookie, `dex_saq`, that the API calls carry: the key's SHA-256 (what
PostgreSQL stores, never the key itself), valid under /saq only (HttpOnly, SameSite=Strict, Path=/saq;
Secure over HTTPS). Each request checks it like a key, so a revoked key's cookie stops working too.
The page then drops `?apiKey=` from the address bar.
"""

from __future__ import annotations

import functools
import gzip
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath
from saq.web.common import STATIC_PATH, render

from functions.desk import authenticate
from local_runtime.auth import presented_key
from shared.adapters.postgres.api_keys import hash_key, is_key_hash
from shared.domain.errors import InputError
from shared.settings import Settings

ROOT = "/saq"
COOKIE = "dex_saq"
_STATIC = {  # what SAQ's page asks for -> (file in saq/web/static, media type, gzipped)
    "app.js": ("app.js", "text/javascript", False),
    "snabbdom.js": ("snabbdom.js.gz", "text/javascript", True),
    "pico.min.css": ("pico.min.css.gz", "text/css", True),
}
_TIDY_ADDRESS = (
    # SAQ's script routes on the path: /saq must read /saq/; and ?apiKey= should not stay in view.
    '<script>if (location.pathname === "/saq" || location.search)'
    ' history.replaceState(null, "", location.pathname.replace(/^\\/saq$/, "/saq/"))</script>'
)


def saq_ui_routes(settings: Settings) -> list[Router]:
    """The /saq router when the setting asks for it (and SAQ carries the queues), else nothing."""
    if not settings.saq_ui or settings.queue_backend != "saq":
        return []
    return [Router(path=ROOT, route_handlers=[page, queues_info, queue_info, job_info, retry_job, abort_job, static],
                   guards=[saq_ui_guard], include_in_schema=False)]


async def saq_ui_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """A key (header or ?apiKey=), else the cookie a page set for one; 401 otherwise."""
    key = presented_key(connection)
    keys = connection.app.state.api_keys
    if key:
        connection.state.client = await authenticate(keys, key)
        connection.state.saq_cookie = hash_key(key)
        return
    digest = connection.cookies.get(COOKIE, "")
    client = await keys.client_by_hash(digest) if is_key_hash(digest) else None
    if client is None:
        raise InputError(401, "unknown or revoked API key" if digest else
                         "an API key is required: send it in the X-API-Key header (or ?apiKey=)", "X-API-Key")
    connection.state.client = client


@get(["/", "/queues/{queue:str}", "/queues/{queue:str}/jobs/{job:str}"], media_type="text/html", sync_to_thread=False)
def page(request: Request) -> Response:
    """SAQ's page (its script draws the view the path names)."""
    html = render(root_path=ROOT).replace("</head>", _TIDY_ADDRESS + "</head>", 1)
    digest = getattr(request.state, "saq_cookie", None)
    cookies = [] if digest is None else [Cookie(
        key=COOKIE, value=digest, path=ROOT, httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )]
    return Response(html, media_type="text/html", cookies=cookies, headers={"Cache-Control": "no-store"})


def engine_queues(request: Request) -> dict[str, Any]:
    """The engine's SAQ queues by name: one per function, and the maintenance queue."""
    port = request.app.state.services.queues
    found = list(getattr(port, "queues", {}).values())
    if getattr(port, "maintenance", None) is not None:
        found.append(port.maintenance)
    return {queue.name: queue for queue in found}


def _queue(request: Request, name: str) -> Any:
    queue = engine_queues(request).get(name)
    if queue is None:
        raise NotFoundException(f"no queue {name!r}")
    return queue


async def _job(request: Request, queue_name: str, key: str) -> Any:
    job = await _queue(request, queue_name).job(key)
    if job is None:
        raise NotFoundException(f"no job {key!r} in {queue_name!r}")
    return job


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    """A job as SAQ's script shows it (arguments and result as text), as saq.web.common.job_dict does."""
    return {**job, **{k: repr(job[k]) for k in ("kwargs", "result") if k in job}}


@get("/api/queues")
async def queues_info(request: Request) -> dict[str, Any]:
    return {"queues": [await queue.info() for queue in engine_queues(request).values()]}


@get("/api/queues/{queue:str}")
async def queue_info(request: Request, queue: FromPath[str]) -> dict[str, Any]:
    info = dict(await _queue(request, queue).info(jobs=True))
    info["jobs"] = [_job_view(job) for job in info.get("jobs", ())]
    return {"queue": info}


@get("/api/queues/{queue:str}/jobs/{job:str}")
async def job_info(request: Request, queue: FromPath[str], job: FromPath[str]) -> dict[str, Any]:
    return {"job": _job_view((await _job(request, queue, job)).to_dict())}


@post("/api/queues/{queue:str}/jobs/{job:str}/retry", status_code=200)
async def retry_job(request: Request, queue: FromPath[str], job: FromPath[str]) -> dict[str, Any]:
    await (await _job(request, queue, job)).retry("retried from ui")
    return {}


@post("/api/queues/{queue:str}/jobs/{job:str}/abort", status_code=200)
async def abort_job(request: Request, queue: FromPath[str], job: FromPath[str]) -> dict[str, Any]:
    await (await _job(request, queue, job)).abort("aborted from ui")
    return {}


@functools.cache
def _asset(name: str) -> tuple[bytes, str, bool]:
    file, media_type, gzipped = _STATIC[name]
    return (STATIC_PATH / file).read_bytes(), media_type, gzipped


@get("/static/{name:str}", sync_to_thread=False)
def static(request: Request, name: FromPath[str]) -> Response:
    if name not in _STATIC:
        raise NotFoundException(f"no file {name!r}")
    body, media_type, gzipped = _asset(name)
    headers = {"Cache-Control": "private, max-age=3600", "Vary": "Accept-Encoding"}
    if gzipped:
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            body = gzip.decompress(body)
    return Response(body, media_type=media_type, headers=headers)
