#!/usr/bin/env bash
# The GPU check, one prepared script (about 7 minutes on one H100):
#   1. the tests that need a GPU (and the persistence and accelerate tests, with a GPU
#      visible), full tracebacks kept;
#   2. benchmarks/speed.py --device cuda (predict against a raw forward, fit against a plain
#      loop, what the prior costs per step, the default against a fixed strength);
#   3. benchmarks/large_fit.py --device cuda (200,000 rows, hidden (256, 256), batch 256);
#   4. a profile of one epoch with the prior on all layers (what a step launches).
#
# Run from the repository root on a machine with a CUDA GPU:
#     bash benchmarks/gpu_check.sh [OUT_DIR]
# OUT_DIR (default benchmarks/results/gpu_check) receives the logs; the benchmarks write
# benchmarks/results/speed_cuda.* and large_fit_cuda.md as usual. Packages missing on the
# machine can travel as wheels in .whl/ (skorch at least): they are installed to /tmp/site.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-benchmarks/results/gpu_check}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, skorch, sklearn, numpy, scipy, sk_adareg, sk_adareg._private_api as p
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name())
print('skorch', skorch.__version__, 'scikit-learn', sklearn.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)
print('sk_adareg', sk_adareg.__file__, 'missing private names:', p.missing())"
} 2>&1 | tee "$OUT/versions.txt"

step() {  # name, time limit in seconds, command...
    local name=$1 limit=$2
    shift 2
    echo "== $name" | tee -a "$OUT/summary.txt"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local code=$?
    echo "   exit $code after $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
    tail -n 3 "$OUT/$name.log" | sed 's/^/   /' | tee -a "$OUT/summary.txt"
}

# 1. Tests: those that skip without a GPU (-k cuda / gpu), then the persistence and
#    accelerate files whole; --tb=long keeps every traceback in the log.
step tests_gpu 150 $PY -m pytest -q -p no:cacheprovider --tb=long -k "cuda or gpu" \
    tests/test_net.py tests/test_fast_step.py tests/test_fast_optim.py \
    tests/test_estimators.py tests/test_options.py tests/test_metrics.py
step tests_persistence_accelerate 150 $PY -m pytest -q -p no:cacheprovider --tb=long \
    tests/test_persistence.py tests/test_accelerate.py tests/test_engine.py

# 2. speed.py on the GPU; (d), the epoch at 1k-1M rows against scikit-learn, is left out
#    for time (it is a CPU comparison).
step speed_cuda 170 $PY benchmarks/speed.py --device cuda --parts abce --repeats 5 \
    --threads 8

# 3. The large-data fit against a plain loop on the same device.
step large_fit_cuda 120 $PY benchmarks/large_fit.py --device cuda --repeats 2

# 4. What one epoch with the prior on all layers launches per step.
step profile_penalty 40 $PY - <<'EOF'
import numpy as np, torch
from torch.profiler import ProfilerActivity, profile
from sk_adareg import AdaRegMultiTaskRegressor
rng = np.random.default_rng(0)
X = rng.normal(size=(20_000, 50)).astype(np.float32)
Y = X[:, :7] + 0.1 * rng.normal(size=(20_000, 7))
est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(256, 256), batch_size=256, max_epochs=1,
                               reg_lambda=3e-3, device="cuda", random_state=0)
est.fit(X, Y)  # warm-up
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    est.fit(X, Y)
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30))
EOF

cp benchmarks/results/speed_cuda* benchmarks/results/large_fit_cuda.md "$OUT"/ 2>/dev/null
echo "done: $OUT" | tee -a "$OUT/summary.txt"
