"""Service settings: the library's (:class:`biometric.settings.LibrarySettings`) plus the
service's own, from ``BIOMETRIC_*`` environment variables, read once per process.

``biometric serve`` builds them (command-line options over the environment) and hands them to
the server's worker processes serialised in one variable, :data:`HANDOVER_VAR`
(:meth:`Settings.handed_over`), rather than writing each option into the environment."""

from __future__ import annotations

import os

from pydantic import Field

from biometric.decode import DEFAULT_MAX_PIXELS
from biometric.gallery.service import DuplicatePolicy
from biometric.pipeline import LivenessPolicy
from biometric.settings import LibrarySettings

# The settings of `biometric serve`, as JSON, for the server's worker processes.
HANDOVER_VAR = "BIOMETRIC_SERVE_SETTINGS"


class Settings(LibrarySettings):
    max_body_bytes: int = Field(15 * 1024 * 1024, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)
    thread_pool_size: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), gt=0)
    onnx_threads: int = Field(1, gt=0)  # intra-op threads per model session
    # Verification worker processes (each loads the models once, ~0.3-0.4 GB): one per core by
    # default, so every core verifies; 0 verifies in this process's thread pool instead.
    verify_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0)
    fmr: float | None = Field(None, gt=0, lt=1)  # None: the manifest's default operating point
    migrate_on_start: bool = True
    liveness: LivenessPolicy = LivenessPolicy.OFF  # off | warn | block
    liveness_model: str | None = None  # minifasnet | antispoof; None: the manifest's default
    # Life of a prepared chip (POST /v1/chip): the card is read while the claimant sits down
    # and the capture follows within a minute or two; five minutes cover a retake or two.
    chip_handle_ttl_s: int = Field(300, gt=0, le=3600)
    embedder: str | None = None  # an embedder or a fusion "a+b"; None: manifest default
    # Where the 1:N index lives (biometric.gallery.backend): "shared" (one mapped file per
    # machine for all workers), "memory", "ray:local" / "ray://host:10001" (sharded), with
    # optional "?kind=ivf_sq8&shards=N". None: shared.
    index: str | None = None
    # Seconds between catch-ups of an idle worker with the change log, so that a worker
    # serving no request still maps the rewritten file soon after an erasure.
    index_refresh_s: float = Field(2.0, gt=0)
    duplicate_fmr: float | None = Field(None, gt=0, lt=1)  # None: the manifest's default
    duplicate_policy: DuplicatePolicy = DuplicatePolicy.FLAG
    # Keep a small JPEG face crop (<= 160 px) per enrolled template so reviewers see the faces
    # of a duplicate case (README, "Reviewers see faces"); false where the agency's policy
    # forbids keeping face images: the store then keeps templates only.
    store_face_thumbnails: bool = True
    # Connection deadlines (api.server): the whole request head must arrive within
    # header_timeout_s; a request body may not stall for longer than read_timeout_s.
    header_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    # Failed authentications allowed per client address and per key prefix in a window before
    # further failures answer 429 (api.auth). A deployed client fails only when misconfigured,
    # and then on every call: 20 a minute lets its operator see 401s before 429s.
    auth_failure_limit: int = Field(20, gt=0)
    auth_failure_window_s: float = Field(60.0, gt=0)
    # Largest request head (request line and headers) a connection may send (api.server); 431
    # and close beyond it. A 20 MB X-API-Key header was read in full (issue 21).
    max_header_bytes: int = Field(32 * 1024, gt=1024)

    @classmethod
    def handed_over(cls) -> Settings:
        """The settings ``biometric serve`` handed to this worker process, else the
        environment's."""
        handed = os.environ.get(HANDOVER_VAR)
        return cls.model_validate_json(handed) if handed else cls()


def trust_store_warning(settings: Settings) -> str | None:
    """What ``serve`` and the app say at start when chips are checked against no CSCA trust
    store: every chip then shows as "chip not verified" (README, "Chip trust store")."""
    if settings.chip_auth == "off":
        return ("BIOMETRIC_CHIP_AUTH=off: chip signatures are not checked; every decision shows "
                "the chip as not verified")
    if settings.csca_dir is None:
        return ("no CSCA trust store (BIOMETRIC_CSCA_DIR is not set): no chip can be verified, "
                "every decision shows the chip as not verified; install the agency's CSCA "
                "certificates or master list (README, \"Chip trust store\")")
    return None
