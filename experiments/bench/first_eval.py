"""The first evaluation's time with a cold and a warm numba cache (the compiled ranking and index kernels).

    python experiments/bench/first_eval.py [--repeat 3]

Trains the default job once (DPSH on digits, 32 bits) into a temporary work dir, then times
`jhash eval --workdir RUN` as a new process, alternating: **cold** with an empty
``NUMBA_CACHE_DIR`` (every kernel compiled, as on a fresh install), **warm** with the cache the
previous cold call filled (what every later call sees). Prints the minimum wall-clock seconds of
each and their ratio; jhash's kernels use ``cache=True``, numba's on-disk cache.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time


def timed_eval(workdir: str, cache: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jhash.cli", "eval", "--workdir", workdir], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        subprocess.run([sys.executable, "-m", "jhash.cli", "train", "--workdir", run, "--config.progress=false"],
                       check=True, capture_output=True)
        cold, warm = [], []
        for r in range(args.repeat):
            cache = os.path.join(tmp, f"numba-cache-{r}")
            cold.append(timed_eval(run, cache))  # an empty cache: compiles and fills it
            warm.append(timed_eval(run, cache))  # the filled cache
        print(f"first `jhash eval` of the default job, wall-clock s (min of {args.repeat}): cold {min(cold):.1f}, "
              f"warm {min(warm):.1f}, cold / warm {min(cold) / min(warm):.1f}")
        print(f"all cold: {[round(t, 1) for t in cold]}, all warm: {[round(t, 1) for t in warm]}")


if __name__ == "__main__":
    main()
