#!/usr/bin/env bash
# Real-GPU figures on a lent machine that reaches no registry. Expects,
# carried beside the checkout (both are gitignored: name `.gl` and `.dev` in
# the device call's `carry`):
#   .gl/*.deb      the Vulkan and GL loader packages (libvulkan1, libglvnd0, …)
#   .dev/deno.xz   the Deno binary, xz-compressed
#   .dev/dd        a DENO_DIR holding the peers' npm files (bench/peers.lock)
# and writes its logs and the bench figures as JSON under $OUT.
# Usage: bash bench/device.sh [bench seconds] [test seconds]
#        bash bench/device.sh --prepare   (here, before the call: fills .dev/
#        with about 50 MB; needs strace, and .gl as the device README says)
# Not yet run on a lent machine: the first session lent one found loans paused.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  # The peers' npm packages are ~330 MB; keep only the files one short bench
  # run opens (about 20 MB), found with strace.
  rm -rf .dev /tmp/lg-dd && mkdir -p .dev
  xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >.dev/deno.xz || exit 1
  export DENO_DIR=/tmp/lg-dd XDG_RUNTIME_DIR=/tmp/lg-xdg
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  deno cache --lock=bench/peers.lock bench/peers.ts || exit 1
  deno cache --lock=tests/deps.lock tests/property_test.ts || exit 1
  strace -f -e trace=openat,stat,newfstatat,statx -o /tmp/lg-strace.log \
    deno run --cached-only --lock=bench/peers.lock --allow-read --allow-env --allow-run=python3 \
    bench/peers.ts --only add,mlp --rounds 1 >/tmp/lg-prepare.log 2>&1 ||
    { echo "the traced bench run failed (see /tmp/lg-prepare.log): .dev/dd would be incomplete"; exit 1; }
  { grep -o '"/tmp/lg-dd[^"]*"' /tmp/lg-strace.log | tr -d '"'
    find /tmp/lg-dd/npm -name package.json -o -name registry.json; } | sort -u |
    while read -r f; do
      [ -f "$f" ] || continue
      mkdir -p ".dev/dd/$(dirname "${f#/tmp/lg-dd/}")" && cp "$f" ".dev/dd/${f#/tmp/lg-dd/}"
    done
  cp -r /tmp/lg-dd/npm/registry.npmjs.org/{fast-check,pure-rand} .dev/dd/npm/registry.npmjs.org/
  du -sh .dev
  exit 0
fi
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
BENCH_S="${1:-150}"
TEST_S="${2:-150}"

if [ -z "${SKIP_GL:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
python3 -c 'import lzma,shutil;shutil.copyfileobj(lzma.open(".dev/deno.xz"),open("/tmp/deno","wb"))'
chmod +x /tmp/deno
export PATH="/tmp:$PATH" DENO_DIR="$PWD/.dev/dd" NO_COLOR=1
export XDG_RUNTIME_DIR=/tmp/xdg
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
deno --version | head -1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv

probe='const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const i = a?.info;
console.log(i ? JSON.stringify({ vendor: i.vendor, architecture: i.architecture, device: i.device,
  description: i.description, fallback: i.isFallbackAdapter }) : "no adapter");'
adapter=$(deno eval "$probe" 2>&1)
echo "adapter: $adapter"
if ! grep -q '"vendor"' <<<"$adapter" || grep -q '"fallback":true' <<<"$adapter"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  adapter=$(deno eval "$probe" 2>&1)
  echo "adapter with VK_DRIVER_FILES: $adapter"
fi

if ! grep -q '"fallback":false' <<<"$adapter"; then
  echo "no hardware WebGPU adapter: stopping here"
  exit 3
fi

bench() { # name seconds rows
  echo "=== bench:peers --only $3 (≤ $2 s)"
  timeout "$2" deno run --cached-only --lock=bench/peers.lock --allow-read --allow-env \
    --allow-write="$OUT" --allow-run=python3 bench/peers.ts --rounds 5 --only "$3" \
    --json "$OUT/$1.json" >"$OUT/$1.log" 2>&1
  echo "bench rc=$?"
  grep -v '^  done:' "$OUT/$1.log" | cut -c1-600
}
bench peers_mlp "$BENCH_S" mlp,chain
bench peers_ops "$BENCH_S" matmul,add,exp,bias,sum

echo "=== deno test (≤ ${TEST_S} s)"
timeout "$TEST_S" deno test --cached-only --lock=tests/deps.lock --allow-env --allow-read \
  --allow-write=tests/_tmp --allow-net=127.0.0.1 --allow-run --v8-flags=--expose-gc \
  tests/jit_compile_test.ts tests/jit_test.ts tests/jit_buffers_test.ts tests/optim_jit_test.ts \
  tests/property_test.ts tests/kernels_test.ts tests/ops_test.ts tests/adapter_test.ts \
  >"$OUT/test.log" 2>&1
echo "test rc=$?"
grep -E '^(ok|FAILED)|passed|failed|=>' "$OUT/test.log" | tail -30
