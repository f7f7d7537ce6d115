#!/usr/bin/env bash
# The kit's checks that need a CUDA GPU, in one command: the library on CUDA (tests/test_api.py
# runs its methods on the GPU when one is present), the 2:4 conversion's GPU test, and
# benchmark P10 (2:4 against dense inference, bf16). CI never has a GPU; run this on one.
#
#   scripts/gpu_check.sh [--wheels DIR] [--out DIR] [--reps N]
#
# --wheels DIR  install the wheels in DIR first, without network (`make gpu-wheels` fills
#               .gpu-wheels/ with what a machine that has PyTorch but not the kit's other
#               dependencies needs).
# --out DIR     where the logs and P10's JSON go (default: gpu_check/).
# --reps N      P10's repetitions (default 5).
# PYTHON        the interpreter (default: .venv/bin/python if there is one, else python3).
# Exit status: 0 when the tests and P10 pass; 1 when one fails; 2 on bad input or no GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels="" out="gpu_check" reps=5
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels|--out|--reps)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "gpu_check: $1 needs a value" >&2; exit 2; }
      case "$1" in --wheels) wheels="$2" ;; --out) out="$2" ;; --reps) reps="$2" ;; esac
      shift 2 ;;
    *) echo "gpu_check: unknown argument '$1' (use --wheels DIR, --out DIR, --reps N)" >&2; exit 2 ;;
  esac
done
py="${PYTHON:-python3}"
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && py=.venv/bin/python
if [ -n "$wheels" ] && ! ls "$wheels"/*.whl >/dev/null 2>&1; then
  echo "gpu_check: no wheels in '$wheels' (run 'make gpu-wheels' where there is network)" >&2
  exit 2
fi
case "$reps" in ''|*[!0-9]*|0) echo "gpu_check: --reps '$reps' is not a positive integer" >&2; exit 2 ;; esac
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: $py sees no CUDA GPU; run this on a machine with one" >&2
  exit 2
fi
mkdir -p "$out"
if [ -n "$wheels" ]; then
  "$py" -m pip install -q --no-deps --no-index "$wheels"/*.whl > "$out/install.log" 2>&1 || {
    echo "gpu_check: installing the wheels failed (see $out/install.log)" >&2; exit 2; }
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  git log -1 --format='commit %H' 2>/dev/null; } | tee "$out/env.txt"
status=0
echo "== tests on CUDA"
"$py" -m pytest -q -p no:cacheprovider tests/test_semi_structured.py tests/test_api.py \
  2>&1 | tee "$out/pytest.log" || status=1
echo "== P10, $reps repetitions"
"$py" -m benchmarks --only P10 --reps "$reps" --device cuda 2>&1 | tee "$out/p10.log" || status=1
cp benchmarks/last.json "$out/p10.json" 2>/dev/null || status=1
echo "gpu_check: $([ $status = 0 ] && echo passed || echo FAILED); logs in $out/"
exit $status
