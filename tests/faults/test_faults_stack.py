"""Fault injection against the whole stack (marker ``faults``; ``make test-faults`` runs this inside
``scripts/in_netns.sh``). One stack for the module: private Redis + MariaDB + Ray Serve inference server (tiny
bundles, or the real store) + API, a FaultProxy between API and serving, and steady bounded visitor load
(tests/stack/load.py) while a dependency is stopped, killed, slowed or restarted.

Budget: ~40 s stack start + ~60 s database outage (``XIAOKE_FAULT_DB_DOWN_S``) + ~2 min for the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stack import Stack
from tests.stack.load import LoadGen, LoadResult

pytestmark = [pytest.mark.faults, pytest.mark.slow]

DB_DOWN_S = float(os.environ.get("XIAOKE_FAULT_DB_DOWN_S", "60"))
VISITORS = int(os.environ.get("XIAOKE_FAULT_VISITORS", "8"))
THINK_S = 1.0
API_ENV = {
    "API_RATE_IP_PER_MIN": "100000",
    "API_RATE_IP_BURST": "10000",
    "API_RATE_SESSION_PER_MIN": "120",
    "API_RATE_SESSION_BURST": "20",
}


def _in_private_netns() -> bool:
    """True when the only network interface of this process's namespace is loopback (/proc/net/dev is per
    namespace; /sys/class/net is not remounted by unshare)."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not _in_private_netns():
        pytest.skip("fault tests start Ray: run them in a private network namespace (make test-faults)")
    serving = os.environ.get("XIAOKE_FAULT_SERVING", "ray")
    with Stack(serving=serving, api_env=API_ENV) as st:  # type: ignore[arg-type]
        yield st


def stored(st: Stack, sessions: set[str]) -> tuple[int, int]:
    """(rows, distinct ids) of messages of these sessions in MariaDB."""
    if not sessions:
        return 0, 0
    ids = ",".join(f"'{s}'" for s in sessions if s.replace("_", "").replace("-", "").isalnum())
    rows = st.sql(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM messages WHERE session_id IN ({ids})")
    return int(rows[0][0]), int(rows[0][1])


def wait_drained(st: Stack, timeout_s: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    ready: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            ready = st.api_ready()
            checks = ready["checks"]
            assert isinstance(checks, dict)
            if checks["database"] and checks["writer_pending"] == 0:
                return ready
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"writer did not drain within {timeout_s:.0f} s: {ready}")


def assert_no_loss(st: Stack, result: LoadResult) -> None:
    wait_drained(st)
    rows, distinct = stored(st, result.sessions)
    assert rows == distinct, f"duplicate message rows: {rows} rows, {distinct} ids"
    assert rows == result.accepted_records, f"accepted {result.accepted_records} messages, stored {rows}"


async def chat(
    client: httpx.AsyncClient,
    text: str,
    session: tuple[str, str] | None = None,
    identity: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, object] = {"message": text, **(identity or {})}
    headers = {}
    if session:
        body["session_id"] = session[0]
        headers["X-Session-Token"] = session[1]
    return await client.post("/api/v1/chat", json=body, headers=headers)


async def wait_normal_answers(api_url: str, timeout_s: float) -> float:
    """Seconds until a FAQ question is answered by the models again (not ``degraded``)."""
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=api_url, timeout=5) as c:
        while time.monotonic() - t0 < timeout_s:
            r = await chat(c, "支持7天无理由退货吗？")
            if r.status_code == 200 and r.json()["reply"]["type"] != "degraded":
                return time.monotonic() - t0
            await asyncio.sleep(0.5)
    raise AssertionError(f"replies still degraded {timeout_s:.0f} s after recovery")


def report(name: str, result: LoadResult, **extra: object) -> None:
    print(f"\n[faults] {name}: {result.summary()} {extra}")


# ---- API process restart --------------------------------------------------------------------------------
async def test_api_restart_mid_conversation(stack: Stack) -> None:
    order_id = "2024112300123"
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as c:
        r = await chat(c, "我的订单到哪了", identity=stack.demo_identity())  # the demo customer's order
        assert r.status_code == 200, r.text
        first = r.json()
        session = (first["session_id"], first["session_token"])
        assert first["reply"]["type"] == "slot_prompt", first  # waiting for the order number
        old_pid = stack.procs["api"].pid
        stack.restart("api")
        assert stack.procs["api"].pid != old_pid
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as c:
        r = await chat(c, f"订单号是{order_id}", session)
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["session_id"] == session[0]
        assert second["reply"]["type"] != "slot_prompt" and order_id in second["reply"]["text"], second
        h = await c.get(f"/api/v1/sessions/{session[0]}/history", headers={"X-Session-Token": session[1]})
        assert h.status_code == 200
        assert [m["role"] for m in h.json()["messages"]] == ["user", "bot", "user", "bot"]


# ---- inference server slowed above the client timeout ---------------------------------------------------
async def test_slow_serving_keeps_p99_under_1500ms(stack: Stack) -> None:
    assert stack.proxy is not None
    gen = LoadGen(stack.api_url, visitors=VISITORS, think_s=THINK_S, seed=11, identity=stack.demo_identity())
    await gen.start()
    await asyncio.sleep(5)
    slow_from = gen.now()
    stack.proxy.set_delay(3.0)  # serving_timeout_s is 0.8 s
    await asyncio.sleep(20)
    slow_until = gen.now()
    stack.proxy.set_delay(0.0)
    recovered_s = await wait_normal_answers(stack.api_url, 45)
    result = await gen.stop()
    window = result.window(slow_from, slow_until)
    p99 = result.percentile_ms(99, slow_from, slow_until)
    report("slow serving", result, p99_slow_ms=round(p99, 1), recovered_s=round(recovered_s, 1))
    assert window and not result.errors, result.summary()
    assert p99 < 1500, f"p99 {p99:.0f} ms while serving was slow"
    assert any(t.reply_type == "degraded" for t in window)
    assert_no_loss(stack, result)


# ---- inference server killed ----------------------------------------------------------------------------
async def test_serving_killed_degrades_then_recovers(stack: Stack) -> None:
    api_pid = stack.procs["api"].pid
    gen = LoadGen(stack.api_url, visitors=VISITORS, think_s=THINK_S, seed=12, identity=stack.demo_identity())
    await gen.start()
    await asyncio.sleep(5)
    killed_at = gen.now()
    stack.kill("serving")
    await asyncio.sleep(8)
    down_until = gen.now()
    await asyncio.to_thread(stack.start_proc, "serving")  # waits for its /readyz
    recovered_s = await wait_normal_answers(stack.api_url, 60)
    result = await gen.stop()
    down = result.window(killed_at + 0.5, down_until)
    report("serving killed", result, recovered_after_ready_s=round(recovered_s, 1))
    assert not result.errors, result.summary()
    # Turns the dialog answers by rule, without the models, go on as usual: an order number being filled in
    # (slot_prompt) and a rule's template ("你是机器人吗" of the chit-chat mix: dialog:bot_identity); every other
    # turn degrades.
    by_rule = ("slot_prompt", "template")
    assert down and any(t.reply_type == "degraded" for t in down), result.summary()
    assert all(t.reply_type == "degraded" for t in down if t.reply_type not in by_rule), result.summary()
    slow = [round(t.latency_s, 2) for t in result.window(killed_at) if t.latency_s >= 1.0]
    assert not slow, f"turns slower than 1 s after the kill: {slow}"
    assert stack.procs["api"].pid == api_pid  # recovered without restarting the API
    assert_no_loss(stack, result)


# ---- Redis restarted ------------------------------------------------------------------------------------
async def test_redis_restart(stack: Stack) -> None:
    gen = LoadGen(stack.api_url, visitors=VISITORS, think_s=THINK_S, seed=13, identity=stack.demo_identity())
    await gen.start()
    await asyncio.sleep(5)
    t_stop = gen.now()
    await asyncio.to_thread(stack.restart, "redis")
    t_up = gen.now()
    await asyncio.sleep(10)
    result = await gen.stop()
    report("redis restart", result, outage_s=round(t_up - t_stop, 2))
    five = [(round(t.t, 2), t.status, t.code) for t in result.turns if t.status >= 500 or t.status == 0]
    assert not five, f"visitor-visible 5xx/transport errors around the Redis restart: {five}"
    after = result.window(t_up + 2)
    assert after and all(t.status == 200 for t in after), [
        (t.status, t.code) for t in after if t.status != 200
    ]
    # rate limiting works again (Redis token buckets): one session hammered past its burst
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as c:
        r = await chat(c, "你好")
        s = (r.json()["session_id"], r.json()["session_token"])
        codes = [(await chat(c, "包邮吗", s)).status_code for _ in range(30)]
    assert 429 in codes and codes[0] == 200, codes
    assert_no_loss(stack, result)


# ---- MariaDB down for a minute ----------------------------------------------------------------------------
async def test_mariadb_down_then_back(stack: Stack) -> None:
    gen = LoadGen(stack.api_url, visitors=VISITORS, think_s=THINK_S, seed=14, identity=stack.demo_identity())
    await gen.start()
    await asyncio.sleep(5)
    t_down = gen.now()
    await asyncio.to_thread(stack.stop, "mariadb")
    ready_down = await asyncio.to_thread(stack.api_ready)
    await asyncio.sleep(DB_DOWN_S)
    await asyncio.to_thread(stack.start_proc, "mariadb")
    t_up = gen.now()
    await asyncio.sleep(10)
    result = await gen.stop()
    during = result.window(t_down, t_up)
    report("mariadb down", result, down_s=round(t_up - t_down, 1), readyz_during=ready_down)
    assert ready_down["status"] == "ready" and ready_down["checks"]["database"] is False  # type: ignore[index]
    assert len(during) >= DB_DOWN_S * VISITORS / (THINK_S * 3), "too little load during the outage"
    assert not result.errors, result.summary()
    drained = wait_drained(stack)
    assert_no_loss(stack, result)
    print(f"[faults] after recovery: {drained}")


def test_logs_dir_exists(stack: Stack) -> None:
    assert Path(stack.logs, "api.log").is_file()
