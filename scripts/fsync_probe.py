#!/usr/bin/env python3
"""The raw fsync probe the durable benchmarks compare against (bench-durable.sh,
bench-etcd.sh): 2 KiB pwrite + fdatasync, paced at a given rate, on a file beside the
data under test.

    fsync_probe.py FILE RATE SECONDS LATENCIES [DUE]

FILE is a 16 MiB preallocated ring, reused as SQLite reuses its WAL. LATENCIES gets
each write's own time (pwrite + fdatasync), one per line in microseconds; DUE, when
given, gets the time from when each write was due (start + i / RATE) to when it was
durable: a paced loop that stalls 50 ms counts the stall once in the first view, while
every write due during it waits for it in the second, as requests arriving at a server
do (wrk2's correction for coordinated omission). Prints `RESULT rate=<writes/s>`.
"""
import os
import sys
import time


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    path, rate, duration, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    due_out = sys.argv[5] if len(sys.argv) == 6 else None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    ring = 16 << 20
    os.posix_fallocate(fd, 0, ring)
    os.fsync(fd)
    buf = os.urandom(2048)
    lat, due, i = [], [], 0
    interval = 1.0 / rate
    start = time.perf_counter()
    nxt = start
    while True:
        now = time.perf_counter()
        if now - start >= duration:
            break
        if now < nxt:
            time.sleep(nxt - now)
        t0 = time.perf_counter()
        os.pwrite(fd, buf, (i * 2048) % ring)
        os.fdatasync(fd)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        due.append(max(t1 - nxt, 0.0))
        i += 1
        nxt += interval
    os.close(fd)
    for name, values in ((out, lat), (due_out, due)):
        if name:
            with open(name, "w") as f:
                f.write("\n".join("%d" % (x * 1e6) for x in values))
    print("RESULT rate=%.1f" % (len(lat) / duration))


if __name__ == "__main__":
    main()
