"""ModelServer shadow scoring without Ray or model files: a fake shadow runtime behind `_forward`."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from bundle.manifest import BundleKind
from serving.servers import MAX_SHADOW_INFLIGHT, ModelServer
from serving.settings import ModelUserConfig


def _server(rate: float) -> ModelServer:
    server = ModelServer.__new__(ModelServer)  # no store, no ORT: only the shadow path is exercised
    server.kind = BundleKind.INTENT
    server._cfg = ModelUserConfig(shadow_sample_rate=rate)
    server._shadow = SimpleNamespace(version="shadow", manifest=SimpleNamespace(labels=["a", "b"]))  # type: ignore[assignment]
    server._shadow_tasks = set()
    server._shadow_counts = [0, 0]
    return server


async def test_slow_shadow_does_not_pile_up_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live batches share the event loop's thread pool with shadow runs: a shadow slower than the traffic
    must not queue one run per batch (it would delay every live batch behind the backlog)."""
    server = _server(rate=1.0)
    release = threading.Event()

    def slow_forward(runtime: object, texts: list[str]) -> tuple[list[str], np.ndarray, None]:
        release.wait(5)
        return texts, np.tile([[0.0, 1.0]], (len(texts), 1)), None

    monkeypatch.setattr(server, "_forward", slow_forward)
    live = SimpleNamespace(version="live", manifest=SimpleNamespace(labels=["a", "b"]))
    for _ in range(40):  # 40 live batches while the first shadow runs are still busy
        server._maybe_shadow(live, ["我要退货"], np.array([[1.0, 0.0]]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
    assert len(server._shadow_tasks) <= MAX_SHADOW_INFLIGHT
    release.set()
    await asyncio.gather(*list(server._shadow_tasks))
    compared, disagreed = server._shadow_counts
    assert 1 <= compared <= MAX_SHADOW_INFLIGHT and disagreed == compared  # every sampled text: a vs b


async def test_failing_shadow_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(rate=1.0)

    def broken(runtime: object, texts: list[str]) -> None:
        raise ValueError("operands could not be broadcast")

    monkeypatch.setattr(server, "_forward", broken)
    live = SimpleNamespace(version="live", manifest=SimpleNamespace(labels=["a", "b"]))
    server._maybe_shadow(live, ["x"], np.array([[1.0, 0.0]]))  # type: ignore[arg-type]
    tasks = list(server._shadow_tasks)
    await asyncio.gather(*tasks)  # raises here when the failure escapes the task
    assert "shadow intent shadow failed: ValueError" in caplog.text
    assert server._shadow_counts == [0, 0]


async def test_shadow_disagreements_keep_visitor_text_out_of_info_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Replica logs run at INFO and go to files that on-call reads; the line logged the visitor's message
    (first 64 characters: all of a chat message), phone numbers and addresses included."""
    import logging

    server = _server(rate=1.0)
    monkeypatch.setattr(
        server, "_forward", lambda rt, texts: (texts, np.tile([[0.0, 1.0]], (len(texts), 1)), None)
    )
    live = SimpleNamespace(version="live", manifest=SimpleNamespace(labels=["a", "b"]))
    message = "我的手机号是13812345678，地址是北京市朝阳区建国路88号"
    with caplog.at_level(logging.INFO, logger="serving"):
        server._maybe_shadow(live, [message], np.array([[1.0, 0.0]]))  # type: ignore[arg-type]
        await asyncio.gather(*list(server._shadow_tasks))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    line = next(x for x in lines if x.startswith("shadow_disagreement"))
    assert "live_label=a shadow_label=b" in line and "text_sha256=" in line
    assert not any("13812345678" in x or "朝阳区" in x for x in lines)
