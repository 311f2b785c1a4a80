"""HTTP service for counter verification: ``create_app(settings)`` (FastAPI)."""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
