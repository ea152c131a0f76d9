"""Replay at scale on Dask (issue 13): where the cluster comes from.

``--cluster local[:N]`` starts a ``distributed.LocalCluster`` of N worker processes (one
thread each; default: one per CPU) for the length of the replay; ``--cluster
tcp://HOST:PORT`` uses a running scheduler (``dask scheduler`` / ``dask worker``). The
replay itself is :func:`.parallel.replay_distributed`: a scan task per byte range of the
files (:mod:`.scan`), then a replay task per group of families reading only its own
lines, their ledgers merged into the one-process order. Dask is an optional extra
(``collab-lifecycles[dask]``): without it, asking for a cluster is one clear error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .report import Report

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ClusterError", "ClusterSpec", "MissingDask", "connect", "local_client", "parse_cluster",
           "replay_on_dask"]

EXTRA = "collab-lifecycles[dask]"


class MissingDask(RuntimeError):
    """Dask's ``distributed`` is not installed."""


class ClusterError(RuntimeError):
    """The scheduler named by ``--cluster`` cannot be reached."""


def require() -> None:
    """Raise :class:`MissingDask`, naming the extra, when ``distributed`` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MissingDask(f"--cluster needs Dask: pip install '{EXTRA}'") from None


@attrs.frozen
class ClusterSpec:
    """``local`` with ``workers`` processes (None: one per CPU), or a scheduler ``address``."""

    address: str | None = None
    workers: int | None = None

    def __str__(self) -> str:
        if self.address is not None:
            return self.address
        return "local" if self.workers is None else f"local:{self.workers}"


def parse_cluster(text: str) -> ClusterSpec:
    """``local``, ``local:N`` (N >= 1) or a scheduler address (``tcp://HOST:PORT``, also
    ``tls://``, ``ucx://``, ``inproc://``); ``ValueError`` with the reason otherwise."""
    if text == "local":
        return ClusterSpec()
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"{text!r}: local:N needs a whole number of worker processes >= 1")
        return ClusterSpec(workers=int(count))
    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("tcp", "tls", "ucx", "inproc") and rest:
        return ClusterSpec(address=text)
    raise ValueError(f"{text!r} is neither local, local:N nor a scheduler address such as "
                     "tcp://HOST:8786")


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Client]:
    """A client of the cluster ``spec`` names; a local cluster is closed on exit.
    :class:`ClusterError` when a scheduler cannot be reached in 10 s."""
    require()
    from distributed import Client

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout="10s")
        except OSError as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {spec.address}: {exc}") from None
        with client:
            yield client
        return
    workers = spec.workers or os.cpu_count() or 1
    with _local_cluster(workers) as cluster, Client(cluster) as client:
        yield client


#: How the clusters we start differ from Dask's defaults (a user's own cluster keeps its
#: config). A replay task holds the GIL for seconds, and every wake-up of the worker's
#: event loop takes it from the task thread (and its caches): the statistical profiler
#: (every 10 ms), the loop's latency tick (20 ms), the memory monitor (100 ms) and the
#: system monitor (500 ms) are off or slowed. ``MALLOC_TRIM_THRESHOLD_``, which Dask sets
#: to 64 KiB in a worker's environment to hand freed memory back sooner, makes glibc give
#: back and fault in pages again and again under the replay's allocations: 4 MiB instead
#: (unset, a worker's peak RSS grew by 30 MB, past the 300 MB the issue allows). Measured
#: on the 1M-event benchmark: the 12 replay tasks, one after the other on a ``local:1``
#: worker, took 30.5 s of CPU with Dask's defaults and 24.6 s with these (23.1 s in a
#: plain process); ``local:2`` went from 1.30x to 1.41x one process.
_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 4 << 20,
}


def _local_cluster(workers: int) -> Any:
    """A ``LocalCluster`` of ``workers`` processes, one thread each (a replay task holds
    the GIL all along), started under :data:`_WORKER_CONFIG` (a nanny hands the config it
    was made with to its worker process)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(_WORKER_CONFIG):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.ERROR)


_LOCAL: dict[int, Client] = {}


def local_client(workers: int) -> Client:
    """A client of a local cluster of ``workers`` processes, started on first use and
    kept for the next replay (a cluster takes seconds to start, a small replay
    milliseconds); every one is closed when this process exits. For the library's
    ``workers=N`` (:func:`.parallel.replay_parallel`); the command uses :func:`connect`."""
    client = _LOCAL.get(workers)
    if client is None or client.status not in ("running", "connecting"):
        require()
        import atexit

        from distributed import Client

        cluster = _local_cluster(workers)
        client = _LOCAL[workers] = Client(cluster)
        if len(_LOCAL) == 1:
            atexit.register(_close_local)
    return client


def _close_local() -> None:
    while _LOCAL:
        _, client = _LOCAL.popitem()
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def replay_on_dask(paths: Sequence[str | Path], client: Client, **options: Any) -> Report:
    """Replay ``paths`` as one log on ``client``'s cluster (:func:`.parallel.replay_distributed`);
    ``policies`` as in :func:`~.replayer.replay`."""
    from .parallel import replay_distributed
    from .replayer import _priced

    options.pop("interpret", None)  # (the workers run the compiled steps: the same report)
    policies = options.pop("policies", None)
    if policies is not None:
        options["domain"] = _priced(options.get("domain"), policies)
    return replay_distributed(paths, client, **options)
