import os
import sys

# The suite runs on the CPU. With libtpu installed (the TPU extra, for deviceless TPU compiles),
# jax would otherwise try to start a TPU backend in every process and print libtpu's warnings;
# compile-only TPU topologies work without it (jaxcost.hardware).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(__file__))  # tests/zoo_count.py and friends
