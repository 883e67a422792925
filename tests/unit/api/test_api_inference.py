"""Inference client: micro-batching, request ids, timeouts, retries, circuit breaker."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from api_fakes import FakeNlu

from api.inference import BreakerState, CircuitBreaker, InferenceClient, InferenceConfig, InferenceUnavailable
from api.observability import request_id_var


def make_client(transport: httpx.AsyncBaseTransport, **kw: object) -> InferenceClient:
    cfg = InferenceConfig(base_url="http://serving.test", **kw)  # type: ignore[arg-type]
    return InferenceClient(cfg, transport=transport)


async def test_concurrent_turns_share_one_request(fake_nlu: FakeNlu) -> None:
    client = make_client(httpx.ASGITransport(app=fake_nlu), batch_window_ms=20)
    texts = [f"满多少包邮啊{i}" for i in range(10)]

    async def one(i: int) -> str:
        request_id_var.set(f"rid-{i}")
        return (await client.analyze(texts[i])).result.text

    results = await asyncio.gather(*(one(i) for i in range(10)))
    await client.aclose()
    assert results == texts  # each caller gets its own result, in order
    nlu_calls = [r for r in fake_nlu.requests if r["path"] == "/v1/nlu"]
    assert len(nlu_calls) == 1 and len(nlu_calls[0]["texts"]) == 10
    ids = nlu_calls[0]["headers"]["x-batch-request-ids"].split(",")
    assert sorted(ids) == sorted(f"rid-{i}" for i in range(10))


async def test_batches_are_capped(fake_nlu: FakeNlu) -> None:
    client = make_client(httpx.ASGITransport(app=fake_nlu), batch_window_ms=50, batch_max=4)
    await asyncio.gather(*(client.analyze(f"你好{i}") for i in range(10)))
    await client.aclose()
    sizes = sorted(len(r["texts"]) for r in fake_nlu.requests)
    assert sizes == [2, 4, 4]


async def test_slow_server_times_out_quickly(fake_nlu: FakeNlu) -> None:
    fake_nlu.delay_s = 3
    client = make_client(httpx.ASGITransport(app=fake_nlu), timeout_s=0.2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(InferenceUnavailable):
        await client.analyze("你好")
    assert loop.time() - t0 < 0.5
    await client.aclose()


async def test_connect_errors_are_retried_then_succeed(fake_nlu: FakeNlu) -> None:
    attempts = {"n": 0}
    inner = httpx.ASGITransport(app=fake_nlu)

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            attempts["n"] += 1
            if attempts["n"] == 1:
                raise httpx.ConnectError("refused", request=request)
            return await inner.handle_async_request(request)

    client = make_client(Flaky(), retries=1)
    out = await client.analyze("满多少包邮啊")
    assert out.result.candidates[0].faq_id == "faq-025" and attempts["n"] == 2
    await client.aclose()


async def test_http_errors_are_not_retried(fake_nlu: FakeNlu) -> None:
    fake_nlu.fail_with = 500
    client = make_client(httpx.ASGITransport(app=fake_nlu), retries=2)
    with pytest.raises(InferenceUnavailable):
        await client.analyze("你好")
    await client.aclose()


async def test_breaker_opens_and_fails_fast_then_recovers(fake_nlu: FakeNlu) -> None:
    calls = {"n": 0}
    inner = httpx.ASGITransport(app=fake_nlu)

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            return await inner.handle_async_request(request)

    client = make_client(Counting(), breaker_failures=3, breaker_reset_s=0.2, batch_window_ms=0)
    fake_nlu.fail_with = 503
    for _ in range(3):
        with pytest.raises(InferenceUnavailable):
            await client.analyze("你好")
    assert client.breaker.state is BreakerState.OPEN
    before = calls["n"]
    with pytest.raises(InferenceUnavailable) as exc:
        await client.analyze("你好")
    assert exc.value.reason == "circuit_open" and calls["n"] == before  # no request sent
    fake_nlu.fail_with = None
    await asyncio.sleep(0.25)
    assert (await client.analyze("你好")).result.intent.label == "greeting"  # half-open probe succeeds
    assert client.breaker.state is BreakerState.CLOSED
    await client.aclose()


async def test_breaker_gauge_follows_the_breaker_without_traffic(fake_nlu: FakeNlu) -> None:
    """The alert XiaoKeServingCircuitOpen reads this gauge: after an outage with nobody chatting it must not stay
    at 1 (it was only written on requests), while the breaker does reject calls it must read 1."""
    from prometheus_client import generate_latest

    from api.observability import Metrics

    metrics = Metrics()
    cfg = InferenceConfig(
        base_url="http://serving.test", breaker_failures=2, breaker_reset_s=0.2, batch_window_ms=0
    )
    client = InferenceClient(cfg, metrics=metrics, transport=httpx.ASGITransport(app=fake_nlu))

    def gauge() -> str:
        line = next(
            x
            for x in generate_latest(metrics.registry).decode().splitlines()
            if x.startswith("xiaoke_api_breaker_open ")
        )
        return line.split()[1]

    assert gauge() == "0.0"
    fake_nlu.fail_with = 503
    for _ in range(2):
        with pytest.raises(InferenceUnavailable):
            await client.analyze("你好")
    assert gauge() == "1.0"
    await asyncio.sleep(0.25)  # no traffic: the next call would probe, nothing is being rejected
    assert gauge() == "0.0"
    await client.aclose()


def test_breaker_half_open_allows_a_single_probe() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_s=0.0)
    b.record_failure()
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow() is True
    assert b.allow() is False  # second caller waits for the probe
    b.record_failure()
    assert b.state in (BreakerState.OPEN, BreakerState.HALF_OPEN)


async def test_mismatched_result_count_is_unavailable() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"results": [], "thresholds": {"answer": 0.5, "suggest": 0.3}, "model_versions": {}}
        )

    client = make_client(httpx.MockTransport(handler))
    with pytest.raises(InferenceUnavailable):
        await client.analyze("你好")
    await client.aclose()


async def test_long_text_is_truncated_to_contract_limit(fake_nlu: FakeNlu) -> None:
    client = make_client(httpx.ASGITransport(app=fake_nlu))
    await client.analyze("好" * 1000)
    await client.aclose()
    assert len(fake_nlu.requests[0]["texts"][0]) == 512


async def test_texts_arriving_while_requests_are_out_leave_together(fake_nlu: FakeNlu) -> None:
    """Adaptive batching: with every request slot busy, later texts queue and go out as one batch as soon as a
    slot frees, instead of one request each."""
    fake_nlu.delay_s = 0.15
    client = make_client(httpx.ASGITransport(app=fake_nlu), batch_window_ms=1, max_batches_in_flight=1)

    async def later(i: int, after_s: float) -> str:
        await asyncio.sleep(after_s)
        return (await client.analyze(f"运费多少{i}")).result.text

    # one text first (its request takes 150 ms), then 6 more spread over the next 100 ms
    results = await asyncio.gather(later(0, 0.0), *(later(i, 0.02 + 0.015 * i) for i in range(1, 7)))
    await client.aclose()
    assert results == [f"运费多少{i}" for i in range(7)]
    sizes = [len(r["texts"]) for r in fake_nlu.requests if r["path"] == "/v1/nlu"]
    assert sizes == [1, 6], sizes


async def test_idle_client_sends_after_the_window_only(fake_nlu: FakeNlu) -> None:
    client = make_client(httpx.ASGITransport(app=fake_nlu), batch_window_ms=5, max_batches_in_flight=2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await client.analyze("你好")
    assert loop.time() - t0 < 0.2
    await asyncio.gather(client.analyze("你好"), client.analyze("谢谢"))
    await client.aclose()
    assert [len(r["texts"]) for r in fake_nlu.requests] == [1, 2]
