from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_fakes import (
    ANSWER,
    IDENTITY_SECRET,
    SUGGEST,
    DictOrderLookup,
    FakeNlu,
    ShopperDialog,
    demo_templates,
    faq_catalog,
)

from api.dialog.manager import DialogManager
from api.inference import InferenceClient, InferenceConfig
from bundle.contracts import RetrievalThresholds


@pytest.fixture(scope="session")
def fake_nlu_app() -> FakeNlu:
    return FakeNlu()


@pytest.fixture
def fake_nlu(fake_nlu_app: FakeNlu) -> FakeNlu:
    fake_nlu_app.requests.clear()
    fake_nlu_app.fail_with = None
    fake_nlu_app.delay_s = 0.0
    fake_nlu_app.misread.clear()  # a test's misreadings are that test's (the app is shared by the session)
    fake_nlu_app.sentiment_misread.clear()
    fake_nlu_app.thresholds = RetrievalThresholds(answer=ANSWER, suggest=SUGGEST)
    return fake_nlu_app


@pytest.fixture
async def nlu_client(fake_nlu: FakeNlu) -> AsyncIterator[InferenceClient]:
    client = InferenceClient(
        InferenceConfig(base_url="http://serving.test", batch_window_ms=2),
        transport=httpx.ASGITransport(app=fake_nlu),
    )
    yield client
    await client.aclose()


@pytest.fixture
def orders() -> DictOrderLookup:
    return DictOrderLookup()


@pytest.fixture
def dialog(nlu_client: InferenceClient, orders: DictOrderLookup) -> DialogManager:
    """The dialog manager as the demo shop's signed-in customer meets it (ShopperDialog)."""
    return ShopperDialog(nlu_client, demo_templates(), orders, faq_catalog())


@pytest.fixture
def app_settings(tmp_path):  # type: ignore[no-untyped-def]
    from api.settings import Settings

    return Settings(
        _env_file=None,
        env="test",
        secret_key="unit-test-secret-key-0123456789abcdef",
        identity_secret=IDENTITY_SECRET,
        data_dir=tmp_path,
        serving_url="http://serving.test",
        widget_dist=tmp_path / "no-widget",
        console_dist=tmp_path / "no-console",
        cors_origins=["https://shop.example.com"],
        rate_session_burst=1000,
        rate_ip_burst=1000,
    )


@pytest.fixture
async def app_client(app_settings, fake_nlu):  # type: ignore[no-untyped-def]
    """(app, httpx client) with the lifespan running: SQLite in tmp, in-process stores, FakeNlu serving."""
    from api.main import create_app

    app = create_app(app_settings, serving_transport=httpx.ASGITransport(app=fake_nlu))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield app, client
