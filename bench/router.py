"""
Events per second through the event router, to an SBB that changes one CMP
field, in one process:

  (a) memory://, group commit;
  (b) FileStorage, group commit (each commit fsync'd: durable);
  (c) FileStorage, one commit per event: the baseline (one fsync each).

Usage: python bench/router.py [--events N] [--activities K] [--batch-max B]

Targets (issue 2, 2 cores): (a) >= 20,000/s, (b) >= 10,000/s, that is
about 3x the one-fsync-per-event ceiling.  Figures vary with the machine's
load; the ratio (b)/(c) is the one to compare between runs.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import zodburi
import ZODB
from twisted.internet.task import Clock

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from slee.container import Container  # noqa: E402


def open_db(uri):
    factory, options = zodburi.resolve_uri(uri)
    return ZODB.DB(factory(), **options)


def run(uri, events, activities, batch_max, workdir):
    """@return: events per second delivered and committed."""
    container = Container(open_db(uri), workdir / "var", clock=Clock(), batch_max=batch_max)
    container.start()
    container.deploy(str(HERE / "units" / "bench"))
    container.activate("bench")
    container.router.drain()
    from bench_unit import TICK, BenchAdaptor
    ra = BenchAdaptor.instance
    handles = [f"a{i}" for i in range(activities)]
    for handle in handles:
        ra.endpoint.start_activity(handle)
        ra.endpoint.fire_event(handle, TICK, None)      # creates the root entities
    container.router.drain()
    for i in range(events):
        ra.endpoint.fire_event(handles[i % activities], TICK, None)
    started = time.perf_counter()
    container.router.drain()
    elapsed = time.perf_counter() - started
    total = container.router.run_in_transaction(
        lambda: sum(e.cmp.ticks for e in container.engine.state.entities.values()))
    assert total == events + activities, (total, events + activities)
    assert container.router.rolled_back == 0
    container.stop()
    return events / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60000)
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--batch-max", type=int, default=256)
    parser.add_argument("--baseline-events", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        cases = [
            ("memory, group commit", "memory://", args.events, args.batch_max),
            ("FileStorage, group commit (durable)", f"file://{tmp}/group/slee.fs",
             args.events, args.batch_max),
            ("FileStorage, commit per event (baseline)", f"file://{tmp}/single/slee.fs",
             args.baseline_events, 1),
        ]
        for name, uri, events, batch_max in cases:
            workdir = tmp / name.split(",")[0].replace(" ", "") / str(batch_max)
            workdir.mkdir(parents=True)
            if uri.startswith("file://"):
                Path(uri[len("file://"):]).parent.mkdir(parents=True, exist_ok=True)
            results[name] = run(uri, events, args.activities, batch_max, workdir)
            print(f"{name:45s} {results[name]:10,.0f} events/s", flush=True)
    memory, durable, baseline = results.values()
    print(f"{'durable group commit / commit per event':45s} {durable / baseline:10.1f}x")
    print(f"{'memory / durable group commit':45s} {memory / durable:10.1f}x")
    print(f"targets: memory >= 20,000/s: {'met' if memory >= 20000 else 'NOT met'}; "
          f"durable >= 10,000/s: {'met' if durable >= 10000 else 'NOT met'}; "
          f"durable >= 3x baseline: {'met' if durable >= 3 * baseline else 'NOT met'}")


if __name__ == "__main__":
    main()
