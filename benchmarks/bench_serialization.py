"""Why msgspec: encoding and decoding events with json, orjson and msgspec.

Run on demand: ``python benchmarks/bench_serialization.py``. Each library turns
the same 200,000 events into JSON text and back into the event class; ratios
are against the standard library measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import msgspec
import orjson

N = 200_000


@dataclass(frozen=True)
class ItemAdded:
    order: str
    sku: str
    quantity: int
    price: float
    tags: list[str]


def events() -> list[ItemAdded]:
    return [ItemAdded(f"order-{i}", f"sku-{i % 97}", i % 5 + 1, 9.99, ["a", "b"])
            for i in range(N)]


def stdlib(items):
    texts = [json.dumps(asdict(e)) for e in items]
    return [ItemAdded(**json.loads(t)) for t in texts]


def with_orjson(items):
    texts = [orjson.dumps(e).decode() for e in items]  # orjson encodes dataclasses itself
    return [ItemAdded(**orjson.loads(t)) for t in texts]


def with_msgspec(items):
    encode, decode = msgspec.json.Encoder().encode, msgspec.json.Decoder(ItemAdded).decode
    texts = [encode(e).decode() for e in items]
    return [decode(t) for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    items = events()[:20_000] if parser.parse_args().quick else events()
    timings = {}
    for name, fn in (("json (stdlib)", stdlib), ("orjson", with_orjson), ("msgspec", with_msgspec)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            back = fn(items)
            best = min(best, time.perf_counter() - start)
        assert back == items
        timings[name] = best
    base = timings["json (stdlib)"]
    print(f"encode + decode {N:,} events into their class (best of 3)")
    for name, seconds in timings.items():
        print(f"  {name:15s} {N / seconds:>10,.0f} events/s   {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
