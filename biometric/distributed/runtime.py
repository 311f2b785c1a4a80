"""Connecting to Ray: embedded on this machine by default, or a running cluster by address."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from biometric.errors import BiometricError


class ClusterError(BiometricError):
    code = "cluster_error"


@dataclass(frozen=True)
class RayTarget:
    """``address`` None starts Ray embedded in this process's machine (``ray.init()``);
    ``auto`` joins the cluster this machine belongs to; ``ray://host:10001`` a remote one."""

    address: str | None = None
    num_cpus: int | None = None  # embedded only: CPUs Ray may schedule on

    def describe(self) -> str:
        return self.address or f"embedded ({self.num_cpus or os.cpu_count()} CPUs)"


def connect(target: RayTarget | None = None) -> None:
    """Start or join Ray once per process; later calls reuse the connection."""
    import ray

    if ray.is_initialized():
        return
    target = target or RayTarget()
    # The driver's module path must reach the workers: on a cluster the package is installed on
    # every node (same version), embedded they share this interpreter's environment.
    # Ray's and Ray Data's INFO lines would interleave with the progress bar.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    kwargs: dict = {"log_to_driver": False, "logging_level": logging.WARNING}
    if target.address is None:
        kwargs |= {"num_cpus": target.num_cpus, "include_dashboard": False}
    else:
        kwargs["address"] = target.address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray at {target.describe()}: {exc}") from exc
