"""Shared fixtures. Test data comes from ``../shared`` beside the project (or $PROFSCOPE_SHARED)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROFSCOPE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared test data not found at {DATA}: put ../shared beside the project "
                    "or set PROFSCOPE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def data(shared) -> Path:
    return shared / "data"
