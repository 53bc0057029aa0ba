"""Command line: ``python -m benchmarks <task>|all [options]`` (tasks: TASKS)."""

import argparse

from benchmarks._runner import TASKS, run


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run skdance benchmark tasks and write results tables.",
    )
    parser.add_argument("task", choices=[*TASKS, "all"])
    parser.add_argument("--datasets", nargs="+", help="dataset names (default all)")
    parser.add_argument("--models", nargs="+", help="model names (default all)")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        help="seeds of the clustering, imputation and deconvolution runs",
    )
    parser.add_argument(
        "--folds",
        nargs="+",
        type=int,
        help="annotation: which of the 5 cross-validation folds (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shipped dataset, one seed (about a minute, offline)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="clustering: (dataset, seed) runs in parallel processes, one torch "
        "thread each (fit times then include the sharing of the cores)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the existing results of the (dataset, model) pairs not rerun",
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    for task in tasks:
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
        )


if __name__ == "__main__":
    main()
