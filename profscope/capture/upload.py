"""Upload a recorded profile to a profscope server (``profscope record --server URL``)."""
from __future__ import annotations

from ..model import Profile
from .pyspy import CaptureError


def upload(profile: Profile, server: str, labels: dict[str, str]) -> str:
    """POST ``profile`` to ``server``; return where it went."""
    raise CaptureError("--server is not available yet in this build: the server's ingest endpoint "
                       "is not there; write a file with -o or store with --data-dir")
