"""SAQ's dashboard under /saq (local_runtime/saq_ui.py) on real SAQ queues in Redis: absent unless
DEX_SAQ_UI is on; behind an API key (header, ?apiKey=, then the cookie a page sets); it lists the
engine's queues and their jobs, and retries or aborts one."""

from __future__ import annotations

import time
import types
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar

from functions.pipeline import PIPELINE, message_key, step_for
from local_runtime.http_api import refusal
from local_runtime.saq_ui import COOKIE, saq_ui_routes
from shared.adapters.postgres.api_keys import hash_key
from shared.adapters.queues.saq import SaqQueues
from shared.domain.clients import ApiClient
from shared.domain.errors import InputError
from shared.settings import Settings
from tests.conftest import REDIS_URL, forget_namespace

KEY = "dex_saq-ui-test-key"


class Keys:
    """The web process's key cache as the dashboard uses it: by key, and by hash (the cookie)."""

    def __init__(self, *keys: str) -> None:
        self.active = {hash_key(key): ApiClient("dev") for key in keys}

    async def client(self, key: str) -> ApiClient | None:
        return await self.client_by_hash(hash_key(key))

    async def client_by_hash(self, digest: str) -> ApiClient | None:
        return self.active.get(digest)

    def revoke(self, key: str) -> None:
        self.active.pop(hash_key(key), None)


@pytest_asyncio.fixture
async def queues() -> AsyncIterator[SaqQueues]:
    settings = Settings(redis_url=REDIS_URL, namespace=f"t{uuid.uuid4().hex[:10]}")
    port = SaqQueues(settings, step_for, message_key, PIPELINE)
    await port.connect()
    try:
        yield port
    finally:
        await port.disconnect()
        await forget_namespace(settings)


def dashboard(queues: SaqQueues, keys: Keys, enabled: bool = True, backend: str = "saq") -> httpx.AsyncClient:
    """The app's /saq routes as create_app mounts them, on these queues and keys, with the app's 401."""
    settings = Settings(saq_ui=enabled, queue_backend=backend)
    app = Litestar(route_handlers=saq_ui_routes(settings), exception_handlers={InputError: refusal})
    app.state.services, app.state.api_keys = types.SimpleNamespace(queues=queues), keys
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine")


async def test_the_dashboard_is_absent_unless_the_setting_turns_it_on(queues):
    for client in (dashboard(queues, Keys(KEY), enabled=False), dashboard(queues, Keys(KEY), backend="sqs")):
        async with client:
            for path in ("/saq", "/saq/", "/saq/api/queues", "/saq/static/app.js"):
                assert (await client.get(path, headers={"X-API-Key": KEY})).status_code == 404, path


async def test_without_a_key_every_part_of_it_is_401(queues):
    async with dashboard(queues, Keys(KEY)) as client:
        for path in ("/saq", "/saq/api/queues", f"/saq/api/queues/{queues.queues['quote'].name}", "/saq/static/app.js"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["field"] == "X-API-Key"
        assert (await client.get("/saq", headers={"X-API-Key": "dex_wrong"})).status_code == 401
        client.cookies.set(COOKIE, hash_key("dex_wrong"))
        assert (await client.get("/saq")).status_code == 401
        client.cookies.set(COOKIE, KEY)
        assert (await client.get("/saq")).status_code == 401  # the cookie is the key's hash, not the key


async def test_with_the_key_it_shows_the_engine_queues(queues):
    names = {queue.name for queue in queues.queues.values()} | {queues.maintenance.name}
    async with dashboard(queues, Keys(KEY)) as client:
        page = await client.get("/saq", headers={"X-API-Key": KEY})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'const root_path = "/saq"' in page.text and "/saq/static/app.js" in page.text
        listed = (await client.get("/saq/api/queues", headers={"X-API-Key": KEY})).json()["queues"]
        assert {queue["name"] for queue in listed} == names
        assert all({"queued", "active", "scheduled", "workers"} <= queue.keys() for queue in listed)


async def test_a_browser_gives_the_key_once_in_the_address_and_the_cookie_carries_it(queues):
    keys = Keys(KEY)
    async with dashboard(queues, keys) as client:
        page = await client.get("/saq/", params={"apiKey": KEY})
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert f"{COOKIE}={hash_key(KEY)}" in cookie and KEY not in cookie
        assert {"HttpOnly", "Path=/saq", "SameSite=strict"} <= {part.strip() for part in cookie.split(";")}
        assert "history.replaceState" in page.text  # the page drops ?apiKey= from the address bar
        # SAQ's script calls its API with a plain fetch: the cookie is all it sends
        listed = await client.get("/saq/api/queues")
        assert listed.status_code == 200 and queues.queues["quote"].name in listed.text
        script = await client.get("/saq/static/app.js")
        assert script.status_code == 200 and "root_path" in script.text
        css = await client.get("/saq/static/pico.min.css", headers={"Accept-Encoding": "identity"})
        assert css.status_code == 200 and "content-encoding" not in css.headers and "Pico" in css.text
        keys.revoke(KEY)
        assert (await client.get("/saq/api/queues")).status_code == 401  # a revoked key's cookie no longer opens it


async def test_a_queue_lists_its_jobs_and_a_job_can_be_aborted(queues):
    quote = queues.queues["quote"]
    job = await quote.enqueue("quote", scheduled=time.time() + 3600, messages=['{"orderId":"o-1"}'], attempt=1)
    headers = {"X-API-Key": KEY}
    async with dashboard(queues, Keys(KEY)) as client:
        view = (await client.get(f"/saq/api/queues/{quote.name}", headers=headers)).json()["queue"]
        assert view["name"] == quote.name and view["scheduled"] == 1
        assert [shown["key"] for shown in view["jobs"]] == [job.key]
        assert "o-1" in view["jobs"][0]["kwargs"]  # as text, as SAQ's script shows it
        one = (await client.get(f"/saq/api/queues/{quote.name}/jobs/{job.key}", headers=headers)).json()["job"]
        assert one["key"] == job.key and one["function"] == "quote"
        assert (await client.post(f"/saq/api/queues/{quote.name}/jobs/{job.key}/abort", headers=headers)).status_code \
            == 200
        assert (await quote.job(job.key)).status in {"aborting", "aborted"}  # SAQ's abort of a job not yet active
        assert (await client.get(f"/saq/api/queues/{quote.name}/jobs/nope", headers=headers)).status_code == 404
        assert (await client.get("/saq/api/queues/nope", headers=headers)).status_code == 404
        assert (await client.get("/saq/queues/" + quote.name, headers=headers)).status_code == 200  # the page's own path


@pytest.mark.parametrize("path", ["/saq/static/../../settings.py", "/saq/static/common.py"])
async def test_only_saq_assets_are_served(queues, path):
    async with dashboard(queues, Keys(KEY)) as client:
        assert (await client.get(path, headers={"X-API-Key": KEY})).status_code == 404
