"""The API keeps idle client connections open longer than the reverse proxy reuses them.

If the API (uvicorn) closed an idle keep-alive connection first, nginx could send the next visitor's request
on a connection the API is closing: a reset, seen by the visitor as a 502. nginx's upstream
``keepalive_timeout`` defaults to 60 s.
"""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import Settings

REPO = Path(__file__).resolve().parents[3]
NGINX_UPSTREAM_IDLE_DEFAULT_S = 60


def _upstream_idle_s(conf: str) -> int:
    block = re.search(r"upstream\s+api\s*\{(.*?)\}", conf, re.S)
    assert block, "deploy/nginx.conf has no `upstream api` block"
    m = re.search(r"keepalive_timeout\s+(\d+)s?;", block.group(1))
    return int(m.group(1)) if m else NGINX_UPSTREAM_IDLE_DEFAULT_S


def test_api_keepalive_outlives_the_proxys_upstream_idle_time() -> None:
    conf = (REPO / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "keepalive 32;" in conf  # the proxy does reuse upstream connections
    assert Settings(_env_file=None).keepalive_timeout_s > _upstream_idle_s(conf)


def test_upstream_idle_parser_reads_an_explicit_value() -> None:
    assert _upstream_idle_s("upstream api { server a:1; keepalive 8; keepalive_timeout 90s; }") == 90
    assert _upstream_idle_s("upstream api { server a:1; keepalive 8; }") == 60
