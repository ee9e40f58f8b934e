"""Execute the notebooks top to bottom without saving their outputs (the committed
notebooks stay clean): full size by default, which regenerates docs/figures/;
``--small`` for the quick CI-sized run.

    python notebooks/run.py [--small] [01 03 ...]
"""

import argparse
import os
import pathlib
import time

import nbclient
import nbformat

HERE = pathlib.Path(__file__).parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", action="store_true", help="small inputs (JAXCOST_NOTEBOOK_SMALL=1)")
    p.add_argument("select", nargs="*", help="notebook name prefixes (default: all)")
    args = p.parse_args()
    if args.small:
        os.environ["JAXCOST_NOTEBOOK_SMALL"] = "1"
    else:
        os.environ.pop("JAXCOST_NOTEBOOK_SMALL", None)
    paths = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if args.select:
        paths = [q for q in paths if any(q.name.startswith(s) for s in args.select)]
    for path in paths:
        t0 = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}}).execute()
        print(f"{path.name}: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
