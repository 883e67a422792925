"""``python -m tests.stack.fake_serving --port P``: the deterministic FakeNlu (tests/unit/api/api_fakes.py)
as an HTTP server, for stack runs that exercise the API without paying for Ray (it is not a model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stack.fake_serving")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    opts = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests" / "unit" / "api"))
    import uvicorn
    from api_fakes import FakeNlu

    uvicorn.run(FakeNlu(), host=opts.host, port=opts.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
