#!/usr/bin/env bash
# Compiles every CUDA source of ops/ (and the bindings) to object files with nvcc against the installed torch's
# headers, without linking: proof that the sources build, on a machine with nvcc but a CPU build of torch.
# A CPU build lacks one generated header (c10/cuda/impl/cuda_cmake_macros.h); a stand-in goes in a temp dir.
# Usage: bash scripts/check_cuda_sources.sh [ARCH, default sm_90]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
ARCH=${1:-sm_90}
command -v nvcc >/dev/null || { echo "nvcc not found"; exit 2; }
TORCH_INC=$($PY -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I' + p for p in include_paths()))")
PY_INC=$($PY -c "import sysconfig; print(sysconfig.get_paths()['include'])")
ABI=$($PY -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/inc/c10/cuda/impl"
[ -f "$($PY -c "import torch, os; print(os.path.dirname(torch.__file__))")/include/c10/cuda/impl/cuda_cmake_macros.h" ] \
  || echo "#define C10_CUDA_BUILD_SHARED_LIBS" > "$tmp/inc/c10/cuda/impl/cuda_cmake_macros.h"
FLAGS="-std=c++17 -O3 -I$tmp/inc $TORCH_INC -I$PY_INC -DTORCH_EXTENSION_NAME=perception3d_ext -D_GLIBCXX_USE_CXX11_ABI=$ABI"
for src in ops/*/*.cu; do
  echo "[nvcc -arch=$ARCH] $src"
  nvcc -c $FLAGS -arch="$ARCH" "$src" -o "$tmp/$(basename "$src").o"
done
echo "[g++] ops/bindings.cpp"
g++ -c $FLAGS ops/bindings.cpp -o "$tmp/bindings.o"
echo "all CUDA sources compile"
