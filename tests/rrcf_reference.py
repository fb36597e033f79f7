#!/usr/bin/env python3
"""Scores a series with `rrcf`, the reference implementation of the robust random cut forest
paper (Guha et al., ICML 2016), as a sliding window: the reference the forest tests compare our
scores against.

Reads one value per line (blank: end) from stdin, shingles them, and for each shingled point
inserts it into every tree, forgets the point that left the window, and prints the average
collusive displacement (CoDisp) over the trees, one line per input value (0 before the first
full shingle).

Usage: rrcf_reference.py --trees 30 --tree-size 64 --shingle 4 --seed 7 < values.txt
"""

import argparse
import sys

import numpy as np
import rrcf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, required=True)
    parser.add_argument("--tree-size", type=int, required=True)
    parser.add_argument("--shingle", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    values = [float(line) for line in sys.stdin if line.strip()]
    np.random.seed(args.seed)
    forest = [rrcf.RCTree() for _ in range(args.trees)]
    scores = [0.0] * len(values)
    for index in range(args.shingle - 1, len(values)):
        point = np.array(values[index - args.shingle + 1 : index + 1])
        total = 0.0
        for tree in forest:
            if len(tree.leaves) >= args.tree_size:
                tree.forget_point(index - args.tree_size)
            tree.insert_point(point, index=index)
            total += tree.codisp(index)
        scores[index] = total / args.trees
    sys.stdout.write("".join(f"{score!r}\n" for score in scores))


if __name__ == "__main__":
    main()
