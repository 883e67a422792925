from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.unit.deploy.common import ROOT, vd


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """`kubectl kustomize` of both overlays (validated: no findings)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    out = {}
    for overlay in ("cpu", "gpu"):
        docs, findings = vd.render_kustomize(ROOT / "k8s" / "overlays" / overlay)
        assert findings == []
        out[overlay] = docs
    return out
