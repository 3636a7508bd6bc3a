"""One execution layer: independent tasks (folds, ablation subsets, per-patient work) on local
processes (joblib) or on Ray, under a thread budget.

Every task is a plain function call whose inputs carry everything it needs,
seeds included (a component's seed is the run's; a task never draws from a
generator shared with other tasks), so results are the same bytes whatever
the backend, the worker count and the order in which tasks finish. Results
always come back in the order the tasks were given.

Thread budget: workers x native threads <= cores. Each task runs under
``threadpool_limits(threads)`` (BLAS, OpenMP) and, in a fresh worker, with
XLA's CPU thread pool capped before JAX is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from .errors import RunError, TumorboardError

Backend = Literal["local", "ray"]
WORKERS_ENV = "TUMORBOARD_WORKERS"
BACKEND_ENV = "TUMORBOARD_BACKEND"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def xla_flags(threads: int) -> str:
    """XLA_FLAGS that cap JAX's CPU thread pools at ``threads`` (kept with any flags already set)."""
    current = os.environ.get("XLA_FLAGS", "")
    kept = " ".join(f for f in current.split() if "intra_op_parallelism_threads" not in f
                    and "xla_cpu_multi_thread_eigen" not in f)
    extra = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
    return f"{kept} {extra}".strip()


def worker_environment(threads: int) -> dict[str, str]:
    """Environment a fresh worker starts with: native pools read these once, when they load
    (polars' pool cannot be resized later; threadpoolctl caps BLAS/OpenMP again per task)."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "POLARS_MAX_THREADS": str(threads),
        "XLA_FLAGS": xla_flags(threads),
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` while worker processes are started, restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def thread_budget(threads: int):
    """BLAS and OpenMP pools capped at ``threads`` while the block runs (threadpoolctl).

    Multi-threaded BLAS sums in another order than single-threaded BLAS (a
    randomized PCA's scores moved by 1e-3 here), so a task gives the same bytes
    on any worker count only under the same budget: ``threads_per_worker = 1``.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _call(fn: Callable[..., Any], args: tuple, threads: int) -> Any:
    """Run one task under the thread budget (in whatever process the backend chose)."""
    if "jax" not in sys.modules:  # XLA reads its flags once, when JAX starts
        os.environ["XLA_FLAGS"] = xla_flags(threads)
    with thread_budget(threads):
        return fn(*args)


@dataclass(frozen=True)
class Executor:
    """Where a run's independent tasks go: ``local`` (joblib processes; one worker runs them in
    this process) or ``ray`` (Ray tasks on a local Ray or the cluster at ``address``)."""

    backend: Backend = "local"
    workers: int = 1
    threads: int = 1
    address: str | None = None
    auto: bool = False  # workers = "auto": the engine keeps quick folds in this process

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple], label: str = "task") -> Iterator[Any]:
        """``fn(*args)`` for each args tuple of ``tasks``, yielded in the given order as they finish."""
        tasks = list(tasks)
        if not tasks:
            return iter(())
        if self.backend == "ray":
            return self._ray(fn, tasks)
        if self.workers == 1 or len(tasks) == 1:
            return (_call(fn, args, self.threads) for args in tasks)
        return self._joblib(fn, tasks)

    def _joblib(self, fn: Callable[..., Any], tasks: list[tuple]) -> Iterator[Any]:
        from joblib import Parallel, delayed, parallel_config

        import cloudpickle  # what loky pickles tasks with

        _ship_local_plugins_by_value(cloudpickle)
        with _environment(worker_environment(self.threads)), \
                parallel_config(backend="loky", inner_max_num_threads=self.threads):
            parallel = Parallel(n_jobs=min(self.workers, len(tasks)), return_as="generator")
            # workers may start while results are read: the environment holds until the last one
            yield from parallel(delayed(_call)(fn, args, self.threads) for args in tasks)

    def _ray(self, fn: Callable[..., Any], tasks: list[tuple]) -> Iterator[Any]:
        ray = _ray_module()
        _ship_local_plugins_by_value(ray.cloudpickle)
        remote = ray.remote(num_cpus=self.threads, runtime_env={"env_vars": worker_environment(self.threads)})(_call)
        refs = [remote.remote(fn, args, self.threads) for args in tasks]
        for ref in refs:  # in submission order: the same order as local
            yield ray.get(ref)

    def describe(self) -> dict[str, Any]:
        """What provenance.json records about where the run ran."""
        out: dict[str, Any] = {"backend": self.backend, "workers": "auto" if self.auto else self.workers,
                               "threads_per_worker": self.threads}
        if self.address:
            out["address"] = self.address
        return out


def _ray_module():
    try:
        import ray
    except ImportError as err:
        raise TumorboardError('[execution] backend = "ray" needs Ray: pip install "ray[default]"') from err
    return ray


def _ship_local_plugins_by_value(cloudpickle) -> None:
    """Local plugin files (loaded by location, not importable by name) travel inside the pickled
    task, so a worker process never has to find them on its own path. ``cloudpickle`` is the copy
    the backend pickles with (joblib and Ray each vendor their own)."""
    from .plugins import LOCAL_PREFIX

    for name, module in list(sys.modules.items()):
        if name.startswith(LOCAL_PREFIX) and module is not None:
            cloudpickle.register_pickle_by_value(module)


def start_ray(address: str | None, workers: int | None) -> int:
    """Connect to the Ray cluster at ``address`` (or start a local Ray); return its CPU count."""
    ray = _ray_module()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers or usable_cores()
        try:
            ray.init(**kwargs)
        except ConnectionError as err:
            raise TumorboardError(f"could not reach the Ray cluster at {address!r} ({err}); check [execution] "
                                  "address (e.g. \"ray://head:10001\" or \"auto\" on a cluster node)") from err
    return int(ray.cluster_resources().get("CPU", 1))


def make_executor(section, *, backend: str | None = None, workers: int | None = None) -> Executor:
    """The executor of a spec's ``[execution]`` section, with command-line (or environment) overrides."""
    backend = backend or os.environ.get(BACKEND_ENV) or section.backend
    if backend not in ("local", "ray"):
        raise RunError(f"execution backend {backend!r} is not one of local, ray")
    chosen = workers or _env_workers() or section.workers
    cores = usable_cores()
    if backend == "ray":
        total = start_ray(section.address, None if chosen == "auto" else int(chosen))
        n = total if chosen == "auto" else int(chosen)
    else:
        n = cores if chosen == "auto" else int(chosen)
    threads = section.threads_per_worker
    threads = max(1, (total if backend == "ray" else cores) // max(n, 1)) if threads == "auto" else int(threads)
    return Executor(backend, max(1, n), threads, section.address, auto=chosen == "auto")  # type: ignore[arg-type]


def _env_workers() -> int | None:
    value = os.environ.get(WORKERS_ENV)
    if not value:
        return None
    try:
        return max(1, int(value))
    except ValueError as err:
        raise RunError(f"{WORKERS_ENV}={value!r} is not a number of workers") from err


# the executor of the run in progress, for plugins that parallelise per-patient work
_current: ContextVar[Executor | None] = ContextVar("tumorboard_executor", default=None)


@contextmanager
def using(executor: Executor) -> Iterator[Executor]:
    """Make ``executor`` the one :func:`parallel_map` uses while a run is in progress."""
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)


def current_executor() -> Executor | None:
    """The executor of the run in progress in this process (None outside a run, and in a worker)."""
    return _current.get()


def parallel_map(fn: Callable[..., Any], tasks: Sequence[tuple]) -> list[Any]:
    """``[fn(*args) for args in tasks]`` on the run's executor (in this process outside a run).

    For per-patient work inside a component (image preparation, feature
    extraction): ``fn`` must be a module-level function and each task's
    arguments must be all it needs; results come back in the order given.
    """
    executor = _current.get()
    if executor is None or executor.workers == 1:
        return [fn(*args) for args in tasks]
    return list(executor.map(fn, tasks))
