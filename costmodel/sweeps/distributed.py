"""Optional: run a sweep's chunks on a Dask cluster (`pip install 'costmodel[distributed]'`).

Workers receive the sweep's arguments (ids and lists), rebuild the column tables once per
process and evaluate chunks by flat index range, so results equal the local run exactly.
"""
from __future__ import annotations

import functools
import json

from costmodel.errors import CostModelError


@functools.lru_cache(maxsize=8)
def _tables(key: str):
    from costmodel.sweeps.grid import Tables, make_axes

    return Tables(make_axes(**json.loads(key)))


def _chunk(key: str, start: int, stop: int, task, accuracy_file):
    from costmodel.sweeps import heap
    from costmodel.sweeps.grid import evaluate_chunk

    heap.retain(stop - start)
    return evaluate_chunk(_tables(key), range(start, stop), task, accuracy_file,
                          inputs=False)  # the index and input columns: read from the axes by the result


CONNECT_TIMEOUT_S = 5


def run_chunks(kwargs: dict, size: int, chunk: int, task, accuracy_file, scheduler: str | None, workers: int | None,
               progress=None) -> list:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise CostModelError("distributed sweeps need Dask: pip install 'costmodel[distributed]'") from None
    key = json.dumps(kwargs, sort_keys=True, default=list)
    cluster = None
    if scheduler:
        import re

        if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s:/]+(:\d{1,5})?/?|[^\s:/]+:\d{1,5}", scheduler.strip()):
            raise CostModelError(f"--scheduler {scheduler}: expected a Dask scheduler address like tcp://host:8786")
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise CostModelError(f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                                 f"({type(exc).__name__}); is it running and reachable?") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        bounds = [(s, min(size, s + chunk)) for s in range(0, size, chunk)]
        futures = [client.submit(_chunk, key, a, b, task, accuracy_file, pure=False) for a, b in bounds]
        order = {f.key: i for i, f in enumerate(futures)}
        parts = [None] * len(futures)
        done = 0
        for fut in as_completed(futures):
            i = order[fut.key]
            parts[i] = fut.result()
            done += bounds[i][1] - bounds[i][0]
            if progress:
                progress(done, size)
        return parts
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
