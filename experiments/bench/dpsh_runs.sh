#!/usr/bin/env bash
# DPSH at 32 bits on digits, MNIST and CIFAR-10 (JPEG) with the configs' full settings, a
# bit-identical rerun check, then the evaluation benchmark. Prints each run's results table
# (with seconds per epoch); the figures in experiments/results/dpsh.md come from this script.
#
# usage: bash experiments/bench/dpsh_runs.sh DATA_DIR [RUNS_DIR]     (DATA_DIR holds mnist/ and cifar10-jpeg/)
set -euo pipefail
data=${1:?usage: dpsh_runs.sh DATA_DIR [RUNS_DIR]}
runs=${2:-runs}
py=${PYTHON:-python3}
"$py" -c "import jax; print('jax', jax.__version__, jax.devices())"
for ds in digits mnist cifar10; do
  "$py" -m jhash.cli train --config "experiments/configs/dpsh.py:dataset=$ds,bits=32" \
    --config.data_dir="$data" --config.progress=false --workdir "$runs/dpsh-$ds-32"
done
# The same seed twice gives bit-identical codes.
"$py" -m jhash.cli train --config experiments/configs/dpsh.py:dataset=digits,bits=32 \
  --config.progress=false --workdir "$runs/dpsh-digits-32-again" > /dev/null
cmp "$runs/dpsh-digits-32/codes.npz" "$runs/dpsh-digits-32-again/codes.npz" && echo "rerun: codes.npz bit-identical"
"$py" experiments/bench/eval_speed.py --jax
