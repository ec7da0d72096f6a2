"""Start measured children from a small process, so that their peak RSS is their own.

On Linux a child's ``ru_maxrss`` survives ``exec``: it starts as the resident size of the
process it was forked from. Forked from the benchmark itself (tens of MB, more after the
cluster-read comparison), a child would report at least that. Forked from this launcher
(a bare interpreter, about 10 MB), it reports its own peak. Only the standard library is
imported here, on purpose.

Reads one JSON job per line on stdin (``argv``, ``env``, ``cwd``, ``timeout``, ``output``),
answers one JSON line per job (``wall``, ``maxrss_kb``, ``cpu``, ``returncode``); exits when
stdin closes.
"""

import json
import os
import subprocess
import sys
import threading
import time


def run(job: dict) -> dict:
    with open(job["output"], "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(job["argv"], env=job["env"], cwd=job["cwd"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        timer = threading.Timer(job["timeout"], proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped already: keep Popen from waiting
    return {"wall": wall, "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime,
            "returncode": proc.returncode}


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
