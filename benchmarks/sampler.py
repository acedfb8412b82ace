"""What the resource sampler costs: CPU seconds per sample, as a share of one core at the
default interval (1 s). Goal: < 1 %.

A worker-like tree is sampled: this process with a real ffmpeg child encoding a synthetic
source, plus the node probe, as a worker does while it transcodes.

    .venv/bin/python benchmarks/sampler.py [--samples 200]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from dacirco.ffmpeg_bin import ffmpeg_exe
from dacirco.sampling import NodeProbe, own_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="the sampler's interval")
    args = parser.parse_args()
    ffmpeg = subprocess.Popen(
        [
            ffmpeg_exe(), "-v", "quiet", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
            "-t", "600", "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-",
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        probes = [NodeProbe(), own_tree("worker", "bench")]
        cpu, wall = 0.0, time.perf_counter()
        cores = []
        for _ in range(args.samples):
            time.sleep(0.01)
            begin = time.thread_time()
            records = [p.sample(time.time()) for p in probes]
            cpu += time.thread_time() - begin
            cores.append(records[1]["cpu_cores"])
        wall = time.perf_counter() - wall
    finally:
        ffmpeg.kill()
        ffmpeg.wait()
    per_sample = cpu / args.samples
    print(f"samples: {args.samples} in {wall:.2f} s (tree: this process + ffmpeg)")
    print(f"CPU per sample: {per_sample * 1000:.3f} ms")
    print(
        f"share of one core at one sample every {args.interval:g} s: "
        f"{per_sample / args.interval * 100:.3f} % (goal < 1 %)"
    )
    print(f"tree CPU seen (cores), median: {sorted(cores)[len(cores) // 2]:.2f}")


if __name__ == "__main__":
    main()
