#!/usr/bin/env python3
"""What an ideal group commit would answer on this disk: the yardstick beside the fsync
probe in bench-durable.sh.

    group_commit_model.py RATE LATENCIES... [--cpu-us N] [--seed S]
    group_commit_model.py --check     # the model against cases worked out by hand

Writes arrive as a Poisson stream at RATE per second (what the paced phase offered);
one commit is in flight at a time; a write that arrives while the disk is idle starts
a commit at once, one that arrives during a commit waits for it and goes into the next,
together with every other write that arrived meanwhile (a group commit, as the server
does). Each commit takes one fsync drawn at random from the probe's measured
latencies (LATENCIES: files of one sample per line, in microseconds, as fsync_probe.py
writes them) plus --cpu-us (default 0: no CPU at all, no HTTP, no thread hand-off).

Prints `RESULT p50_ms= p99_ms= p999_ms=` of the time from a write's arrival to the end
of its commit. With --cpu-us 0 this is the floor of any server that commits each
write durably on this disk at this rate: a write that arrives during a commit waits
for it and for its own, so even this ideal server's p99 is above the probe's p99.
Deterministic for a given seed (default 1).
"""
import random
import sys


def simulate(rate, samples, cpu_s=0.0, writes=200_000, seed=1):
    """Latencies (seconds) of `writes` Poisson arrivals through one group committer."""
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    for _ in range(writes):
        t += rng.expovariate(rate)
        arrivals.append(t)
    out, free, i = [], 0.0, 0
    while i < len(arrivals):
        if free <= arrivals[i]:
            # Idle disk: this write starts a commit alone.
            start, batch = arrivals[i], [arrivals[i]]
            i += 1
        else:
            # Busy: everything that arrived during the commit in flight goes next.
            start, batch = free, []
            while i < len(arrivals) and arrivals[i] <= free:
                batch.append(arrivals[i])
                i += 1
        free = start + rng.choice(samples) + cpu_s
        out.extend(free - a for a in batch)
    return out


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def check():
    """The model against cases whose answer is known without it."""
    # Far apart arrivals never queue: every write takes exactly one sample.
    lat = simulate(0.001, [0.002, 0.005], writes=1000)
    assert sorted(set(round(x, 9) for x in lat)) == [0.002, 0.005], set(lat)
    # A constant commit time s: a write waits for at most the commit in flight and its
    # own, so every latency lies in [s, 2s], and under load some come close to 2s.
    s = 0.001
    lat = simulate(2000.0, [s], writes=50_000)
    assert all(s - 1e-12 <= x <= 2 * s + 1e-12 for x in lat), (min(lat), max(lat))
    assert max(lat) > 1.9 * s and min(lat) < 1.01 * s, (min(lat), max(lat))
    # Group commit: at 100,000/s and 1 ms commits, a hundred writes share each commit;
    # each waits for the rest of the commit in flight (uniform over it) and its own:
    # 1.5 ms on average. One commit per write would queue without end instead.
    lat = simulate(100_000.0, [s], writes=100_000)
    mean = sum(lat) / len(lat)
    assert 1.45 * s < mean < 1.55 * s, mean
    # The same seed gives the same answer.
    assert simulate(2000.0, [s], writes=100) == simulate(2000.0, [s], writes=100)
    assert simulate(2000.0, [s], writes=100, seed=2) != simulate(2000.0, [s], writes=100, seed=3)
    # CPU time is added to every commit.
    lat = simulate(0.001, [0.002], cpu_s=0.0005, writes=10)
    assert all(abs(x - 0.0025) < 1e-9 for x in lat), lat
    print("group_commit_model: checks pass")


def main(argv):
    if argv == ["--check"]:
        return check()
    args, cpu_us, seed = [], 0.0, 1
    it = iter(argv)
    for a in it:
        if a == "--cpu-us":
            cpu_us = float(next(it))
        elif a == "--seed":
            seed = int(next(it))
        else:
            args.append(a)
    if len(args) < 2:
        sys.exit(__doc__)
    rate = float(args[0])
    samples = [float(x) / 1e6 for f in args[1:] for x in open(f).read().split()]
    if rate <= 0 or not samples:
        sys.exit("need a positive rate and at least one latency sample")
    lat = simulate(rate, samples, cpu_us / 1e6, seed=seed)
    print("RESULT p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f"
          % tuple(percentile(lat, p) * 1e3 for p in (50, 99, 99.9)))


if __name__ == "__main__":
    main(sys.argv[1:])
