#!/usr/bin/env python3
"""Writes a generated listings CSV (deterministic) for matching benchmarks:
   bench/gen_listings.py N OUT.csv
Ames neighbourhood names so the demo's buyers' stated areas match; price
follows neighbourhood, size and beds."""
import csv, random, sys

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
areas = ["North_Ames", "College_Creek", "Old_Town", "Edwards", "Somerset", "Northridge_Heights", "Gilbert",
         "Sawyer", "Northwest_Ames", "Sawyer_West", "Mitchell", "Brookside", "Crawford", "Timberland", "Briardale"]
level = {a: 0.7 + 0.05 * i for i, a in enumerate(areas)}
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["listing_id", "Neighborhood", "Bedroom_AbvGr", "Gr_Liv_Area", "Year_Built", "List_Price"])
    for i in range(n):
        a = rng.choice(areas)
        beds = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5])
        size = int(500 + 350 * beds + rng.gauss(0, 250))
        size = max(400, size)
        price = int(level[a] * (40000 + 95 * size) * rng.lognormvariate(0, 0.12))
        w.writerow(["gen-%06d" % (i + 1), a, beds, size, rng.randint(1900, 2010), price])
