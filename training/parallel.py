"""Several runs of an experiment at once, each its own process: ``--parallel N``.

The study and the task demos train one network per (seed, attention, ...).
With ``--parallel N`` the script starts itself once per run that has not
finished (the same command line, narrowed to that run, with ``--only_runs``),
N at a time, each writing ``log.txt`` in its run folder, and prints every
running one's last line now and then. Then it goes on as without
``--parallel``: every finished run is reused and the tables are written.

The CPU's cores are shared out (``TF_NUM_INTRAOP_THREADS``,
``OMP_NUM_THREADS``), and on a GPU its memory (JAX would take 75% per
process: ``XLA_PYTHON_CLIENT_MEM_FRACTION``). Later runs of a JAX network load
the first one's compiled steps when the runs share a ``--compilation_cache``.
"""

import argparse
import dataclasses
import os
import subprocess
import sys
import time


@dataclasses.dataclass
class Job:
    """One run for a process of its own: its name, what narrows the command line to it,
    and where its output goes."""

    name: str
    argv: list
    log_path: str


def add_parallel_arguments(parser):
    """``--parallel N`` (and the hidden ``--only_runs`` its processes get)."""
    parser.add_argument("--parallel", type=int, default=1,
                        help="runs at once, each its own process writing log.txt in its run "
                        "folder (default 1: one after another in this process); the CPU's cores "
                        "(and a GPU's memory) are shared out among them")
    parser.add_argument("--only_runs", action="store_true", help=argparse.SUPPRESS)


def check_parallel(parser, args):
    if args.parallel < 1:
        parser.error(f"--parallel {args.parallel}: must be at least 1")


def run_parallel(program, argv, jobs, parallel, poll_seconds=15.0, log=print):
    """Runs ``python -m program *argv *job.argv --parallel 1 --only_runs`` for each job,
    ``parallel`` at a time, until all have ended.

    Raises a RuntimeError naming the runs that failed and their logs (the
    ones that finished are kept: the same command reuses them).
    """
    pending, running, failed = list(jobs), [], []
    started = time.perf_counter()
    environment = shared_out_environment(parallel)
    log(f"{len(pending)} runs, {parallel} at a time; each writes log.txt in its folder")
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            os.makedirs(os.path.dirname(os.path.abspath(job.log_path)), exist_ok=True)
            command = [sys.executable, "-m", program, *argv, *job.argv, "--parallel", "1",
                       "--only_runs"]
            with open(job.log_path, "w") as output:
                process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                           env=environment)
            running.append((job, process, time.perf_counter()))
            log(f"started {job.name}")
        time.sleep(poll_seconds)
        for entry in list(running):
            job, process, began = entry
            if process.poll() is None:
                log(f"  {job.name}: {last_line(job.log_path)}")
                continue
            running.remove(entry)
            minutes = (time.perf_counter() - began) / 60
            if process.returncode:
                failed.append(job)
                log(f"{job.name}: failed (exit {process.returncode}) after {minutes:.1f} min: "
                    f"{last_line(job.log_path)}")
            else:
                log(f"{job.name}: finished in {minutes:.1f} min")
    log(f"{len(jobs)} runs ended in {(time.perf_counter() - started) / 60:.1f} min")
    if failed:
        raise RuntimeError("runs failed (the finished ones are kept): " + "; ".join(
            f"{job.name} (see {job.log_path})" for job in failed))


def shared_out_environment(parallel, cores=None):
    """This process's environment, with the CPU's threads and a GPU's memory divided among
    ``parallel`` processes (settings already given are kept)."""
    cores = cores or os.cpu_count() or 1
    threads = str(max(1, cores // parallel))
    shares = {"TF_NUM_INTRAOP_THREADS": threads, "OMP_NUM_THREADS": threads,
              "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{min(0.75, 0.9 / parallel):.3f}",
              "PYTHONUNBUFFERED": "1"}
    return {**shares, **os.environ} if parallel > 1 else {**os.environ, "PYTHONUNBUFFERED": "1"}


def last_line(path):
    """The last non-empty line of a log (progress bars' carriage returns as line ends)."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return "(no log yet)"
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:150] if lines else "(starting)"
