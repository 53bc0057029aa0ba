"""Command line: ``python -m benchmarks <task>|all [options]`` (tasks: TASKS)."""

import argparse
import time

from benchmarks._runner import run
from benchmarks.tasks import TASKS
from skdance.datasets import DatasetNotFoundError


def main(argv=None):
    """Parse the arguments and run the task(s); return ``{task: seconds}``."""
    seeded = [t.name for t in TASKS.values() if t.run_column == "seed"]
    folded = [t.name for t in TASKS.values() if t.run_column == "fold"]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run skdance benchmark tasks and write results tables "
        "(benchmarks/results/<task>.csv and .md).",
    )
    parser.add_argument("task", choices=[*TASKS, "all"])
    parser.add_argument(
        "--datasets", nargs="+", help="dataset names (default: the task's own)"
    )
    parser.add_argument("--models", nargs="+", help="model names (default all)")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        help=f"seeds of the seeded tasks ({', '.join(seeded)})",
    )
    parser.add_argument(
        "--folds",
        nargs="+",
        type=int,
        help=f"cross-validation folds of {', '.join(folded)} (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="each task's quick configuration on the shipped dataset, one seed "
        "or fold (offline; its table says what it runs)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="(dataset, seed) runs in parallel processes, one torch thread each "
        "(fit times then include the sharing of the cores)",
    )
    parser.add_argument(
        "--device",
        help="set the torch models' device (e.g. cuda); tables of a device "
        "other than cpu are written as <task>[_quick]_<device>.*",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the existing results of the (dataset, model) pairs not rerun",
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    seconds = {}
    for task in tasks:
        start = time.perf_counter()
        try:
            _run(task, args)
        except DatasetNotFoundError as exc:
            # one line, no traceback: which data set, and how to provide it
            parser.exit(2, f"python -m benchmarks {task}: error: {exc}\n")
        seconds[task] = time.perf_counter() - start
    if len(tasks) > 1:
        times = ", ".join(f"{t} {s:.1f} s" for t, s in seconds.items())
        print(f"done in {sum(seconds.values()):.1f} s ({times})", flush=True)
    return seconds


def _run(task, args):
    run(
        task,
        args.datasets,
        args.models,
        tuple(args.seeds),
        args.quick,
        verbose=not args.quiet,
        jobs=args.jobs,
        merge=args.merge,
        folds=args.folds,
        device=args.device,
    )


if __name__ == "__main__":
    main()
