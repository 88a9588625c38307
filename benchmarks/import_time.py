"""What ``import keras_coordatt`` costs on top of ``import keras``: time and modules.

Each measurement runs in a fresh interpreter; the rounds alternate, and the
script prints the median of each and the modules the package adds.

    python benchmarks/import_time.py            # 7 rounds; about 1 minute

Writes import_time.csv / .json into --results (docs/results/import-time/).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from machine import command_line
from machine import cpu_model
from machine import results_folder
from machine import write_results

PROBE = """
import json, sys, time
started = time.perf_counter()
import keras
after_keras = time.perf_counter()
before = set(sys.modules)
import keras_coordatt
done = time.perf_counter()
added = sorted(set(sys.modules) - before)
print(json.dumps({"keras": after_keras - started, "package": done - after_keras, "added": added}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh interpreters to time (default: 7)")
    parser.add_argument("--results", default=results_folder("import-time"),
                        help="folder for import_time.csv / .json (default: docs/results/import-time)")
    args = parser.parse_args(argv)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                                      capture_output=True, text=True).stdout.splitlines()[-1])
            for _ in range(args.rounds)]
    added = runs[-1]["added"]
    outside = sorted({name.split(".")[0] for name in added} - {"keras_coordatt"})
    keras_seconds = statistics.median(r["keras"] for r in runs)
    package_seconds = statistics.median(r["package"] for r in runs)
    own = [a for a in added if a.split(".")[0] == "keras_coordatt"]
    print(f"CPU: {cpu_model()}; backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}; "
          f"{args.rounds} fresh interpreters, median")
    print(f"import keras:                  {keras_seconds:.3f} s")
    print(f"import keras_coordatt on top:  {package_seconds:.3f} s "
          f"({len(added)} modules: {len(own)} of keras_coordatt, others: {', '.join(outside) or 'none'})")
    print("keras_coordatt modules: " + ", ".join(own))
    write_results(args.results, "import_time", [
        {"import": "keras", "median_seconds": round(keras_seconds, 4), "modules_added": "",
         "other_top_level_packages": ""},
        {"import": "keras_coordatt on top of keras", "median_seconds": round(package_seconds, 4),
         "modules_added": len(added), "other_top_level_packages": " ".join(outside)}],
        command=command_line("python benchmarks/import_time.py", argv),
        notes=[f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}; median of "
               f"{args.rounds} fresh interpreters; keras_coordatt modules: {' '.join(own)}"])


if __name__ == "__main__":
    main()
