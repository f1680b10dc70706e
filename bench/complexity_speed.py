"""Analytic complexity speed: `complexity.count` on 100,000 design-space samples.

The bar: 100,000 specs in well under 2 s. One run prints the time to
sample the specs (not counted) and the time to count them.
Usage: python bench/complexity_speed.py [--n 100000] [--space AnyNetX_A]
"""

import argparse
import time

import numpy as np

from keras_regnet import complexity, design_spaces


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--space", default="AnyNetX_A")
    args = parser.parse_args()
    space = design_spaces.get(args.space)
    start = time.perf_counter()
    specs = space.sample_many(np.random.default_rng(0), args.n)
    sampled = time.perf_counter() - start
    start = time.perf_counter()
    total = 0
    for spec in specs:
        total += complexity.count(spec).flops
    counted = time.perf_counter() - start
    print(f"{args.n:,} {args.space} specs sampled in {sampled:.2f} s")
    print(
        f"complexity.count on all of them: {counted:.2f} s ({counted / args.n * 1e6:.1f} us per spec; "
        f"target: well under 2 s); mean flops {total / args.n / 1e6:,.0f} M at 224x224x3"
    )


if __name__ == "__main__":
    main()
