#!/bin/sh
# The Python oracle used by test_random_weights for other seeds and shapes must itself agree
# with the references made outside genbench (tensor lists of all six fixture models, and
# the hashes of every tensor small enough for pure Python: norms, biases, small matrices).
set -eu
python3 tools/random_weights_ref.py --check-refs "${GB_TEST_DATA:-data}/refs" ../data/fixture-models
