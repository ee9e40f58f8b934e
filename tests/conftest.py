import os
import shutil
import sys
import tempfile

# The suite runs on the CPU. With libtpu installed (the TPU extra, for deviceless TPU compiles),
# jax would otherwise try to start a TPU backend in every process and print libtpu's warnings;
# compile-only TPU topologies work without it (jaxcost.hardware).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Peaks come from a committed calibration (tests/fixtures/peaks/peaks.json: `jaxcost peaks
# --rounds 3` on a 2-core x86 VM) copied into a cache folder of the session's own: the tests
# neither write the user's ~/.cache/jaxcost nor calibrate in the middle of the suite (26 s,
# timed while other tests load the cores), and the prices they print are the same on every run.
# The notebooks' kernels inherit the variable. Regenerate the fixture when CALIBRATION_VERSION
# changes (tests/test_rates.py checks): JAXCOST_CACHE_DIR=tests/fixtures/peaks jaxcost peaks --refresh --rounds 3
FIXTURE_PEAKS = os.path.join(os.path.dirname(__file__), "fixtures", "peaks", "peaks.json")
if "JAXCOST_CACHE_DIR" not in os.environ:
    os.environ["JAXCOST_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxcost-test-cache-")
    shutil.copy(FIXTURE_PEAKS, os.path.join(os.environ["JAXCOST_CACHE_DIR"], "peaks.json"))

sys.path.insert(0, os.path.dirname(__file__))  # tests/zoo_count.py and friends
