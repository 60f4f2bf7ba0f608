#!/usr/bin/env bash
# Every GPU number jaxunc records, in one short run (target: under 8 minutes on one
# accelerator), for a session that is lent a GPU machine.  Run from the repository
# root:
#
#     bash benchmarks/gpu.sh            # writes benchmarks/gpu-results/<date>/...
#
# It installs the project with its CUDA jaxlib when JAX sees no GPU, records the
# device, then runs each benchmark with a time limit of its own, so one slow stage
# cannot eat the others' time.  Every stage writes a JSON file and a log; a stage
# that fails or times out is reported in SUMMARY.txt and the script goes on.  The
# numbers go into benchmarks/RESULTS.md by hand, with the device named.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-benchmarks/gpu-results}/$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$OUT"
SUMMARY="$OUT/SUMMARY.txt"

if ! python -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
    pip install -q -e ".[test]" "jax[cuda12]" >"$OUT/install.log" 2>&1 ||
        echo "install: failed (see install.log)" >>"$SUMMARY"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python -c "import jax; print(jax.__version__, jax.default_backend(), jax.devices())"
} >"$OUT/device.txt" 2>&1

stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout --signal=TERM "$limit" "$@" >"$OUT/$name.log" 2>&1
    local code=$?
    echo "$name: exit $code in $((SECONDS - start)) s" >>"$SUMMARY"
}

# 1. The toy of Appendix A at P = 10^7 (steady state and whole process).
stage toy 120 python benchmarks/bench_toy.py \
    --steady-pseudo-experiments 10000000 --process-pseudo-experiments 10000000 \
    --reps 3 --json "$OUT/toy.json"
# 2. The pathwise route against training alone, GAN, M = 8192 vmapped trainings
#    with their forward-mode tangents (issue 12's GPU number).
stage bounds-gan-8192 150 python benchmarks/bench_bounds.py \
    --simulations 8192 --reps 1 --json "$OUT/bounds-gan-8192.json"
# 3. The default `jaxunc fisher --surrogate gan` with M = 8192 chain draws, timed
#    whole (compile included) with the information fraction it finds.
stage fisher-gan-8192 180 bash -c "time jaxunc fisher --surrogate gan \
    --simulations 8192 --quiet --no-plots --out '$OUT/fisher-gan-8192'"
# 4. Fit-bound toys and the GAN ensemble (vmapped trainings per second).
stage fits 60 python benchmarks/bench_fits.py --json "$OUT/fits.json"
stage gan 60 python benchmarks/bench_gan.py --json "$OUT/gan.json"

cat "$SUMMARY"
