"""Wall time and peak resident memory of a call."""

import ctypes
import ctypes.util
import gc
import os
import threading
import time

import psutil


def _release_freed_memory():
    """Collect garbage and hand the allocator's free pages back to the OS.

    Without this, memory freed by an earlier fit stays in this process (glibc
    keeps it for reuse) and a later fit's RSS increase reads as 0.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """Sample this process's RSS in a thread; report the peak increase in MiB.

    Sampling (every 5 ms) sees numpy, scipy and torch allocations alike, which
    tracemalloc does not.
    """

    def __init__(self, interval=0.005):
        self.interval = interval
        self._proc = psutil.Process(os.getpid())

    def __enter__(self):
        _release_freed_memory()
        self.baseline = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.start = time.perf_counter()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.peak_mib = (self.peak - self.baseline) / 2**20
        return False
