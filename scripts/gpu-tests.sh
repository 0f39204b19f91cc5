#!/usr/bin/env bash
# The GPU test suite: runs every CUDA test (conformance against the CPU reference, backend, allocator) and the
# NCCL process group's tests (collectives, fail-stop, hybrid layouts against one GPU: these need 2 GPUs) on
# a machine with an NVIDIA GPU and prints a one-line summary; optionally the GPU benchmarks side by side
# with PyTorch.
#
#   scripts/gpu-tests.sh                 on a GPU machine with a JDK 25: builds with Maven, runs the suite
#   scripts/gpu-tests.sh --bench         ... and `colossal bench gpu` (kernels, training steps) with the PyTorch
#                                        peer (python3 with torch and timm) in the same run
#   scripts/gpu-tests.sh --prepare       here, without a GPU: builds and packs .device/ (Java runtime, jars,
#                                        test classes, and the CUDA kernels for sm_90 when NVRTC is found here)
#                                        for a GPU host that has no Java
#   scripts/gpu-tests.sh --device [--bench]   on that host, from the project root: runs from .device/
#
# Without a GPU every CUDA test is skipped with the reason, and the summary says so.
# Logs go to $OUT (if set) or target/gpu-tests/.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode=maven bench=0
for a in "$@"; do
  case "$a" in
    --prepare) mode=prepare;; --device) mode=device;; --bench) bench=1;;
    *) echo "usage: $0 [--prepare | --device] [--bench]" >&2; exit 2;;
  esac
done
logs="${OUT:-$root/target/gpu-tests}"
mkdir -p "$logs"
TESTS=(io.colossal4j.backend.cuda io.colossal4j.distributed.nccl)   # the CUDA backend; the NCCL group (2 GPUs)

if [ "$mode" = prepare ]; then
  . scripts/jdk.sh && c4j_find_jdk || exit 1
  ./mvnw -q -B -ntp -pl core -am -DskipTests package test-compile || exit 1
  dev="$root/.device"
  mkdir -p "$dev/lib"
  rm -rf "$dev/lib"/* "$dev/test-classes"
  cp core/target/colossal4j-core-*.jar "$dev/lib/"
  for j in $(tr ':' ' ' < core/target/classpath.txt); do cp "$j" "$dev/lib/"; done
  ./mvnw -q -B -ntp dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:6.1.3 -DoutputDirectory="$dev/lib" || exit 1
  cp -r core/target/test-classes "$dev/test-classes"
  # the Java runtime and env.sh come from the shared bundle script (run it from the main checkout)
  bundle="${C4J_DEVICE_BUNDLE:-$root/../shared/scripts/device-bundle.sh}"
  if [ -f "$bundle" ] && [ -d "$root/.git" ]; then bash "$bundle" || exit 1; else echo "run device-bundle.sh from the main checkout for .device/jre.tgz and env.sh" >&2; fi
  # the CUDA kernels compiled here when NVRTC is found (C4J_LIBNVRTC, CUDA_HOME, LD_LIBRARY_PATH, ...): the GPU host
  # then loads them instead of compiling for a minute or more at first use
  rm -rf "$dev/kernels"
  if "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$(ls "$dev"/lib/*.jar | grep -v console-standalone | tr '\n' ':')" \
      io.colossal4j.cli.Main kernels --arch 90 --cache "$dev/kernels" 2>/dev/null; then :; else
    echo "no NVRTC here: the GPU host compiles the kernels at first use"; rm -rf "$dev/kernels"; fi
  du -sh "$dev"
  exit 0
fi

summary() {  # reads the JUnit console summary from $1 and prints the one line that counts
  local log="$1" ok fail skip abort
  ok=$(sed -n 's/.*\[ *\([0-9]*\) tests successful.*/\1/p' "$log" | tail -1)
  fail=$(sed -n 's/.*\[ *\([0-9]*\) tests failed.*/\1/p' "$log" | tail -1)
  skip=$(sed -n 's/.*\[ *\([0-9]*\) tests skipped.*/\1/p' "$log" | tail -1)
  abort=$(sed -n 's/.*\[ *\([0-9]*\) tests aborted.*/\1/p' "$log" | tail -1)
  echo "gpu-tests: ${ok:-0} passed, ${fail:-0} failed, $(( ${skip:-0} + ${abort:-0} )) skipped"
  [ "${abort:-0}" != 0 ] && grep -m1 -o 'no usable CUDA GPU, skipping: [^]]*' "$log" | head -c 400 && echo
  [ "${fail:-1}" = 0 ]
}

if [ "$mode" = device ]; then
  source .device/env.sh
  mkdir -p /tmp/c4j-kernels && cp .device/kernels/*.cubin /tmp/c4j-kernels/ 2>/dev/null   # compiled by --prepare, if it could
  cp=".device/test-classes:$(ls .device/lib/*.jar | grep -v console-standalone | tr '\n' ':')"
  jflags=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dc4j.kernelCache=/tmp/c4j-kernels)
  select=(); for p in "${TESTS[@]}"; do select+=(--select-package "$p"); done
  java "${jflags[@]}" -jar .device/lib/junit-platform-console-standalone-*.jar execute --class-path "$cp" \
    "${select[@]}" --details=summary --details-theme=ascii --disable-banner 2>&1 | tee "$logs/gpu-tests.log" | grep -v '^\s*at ' | tail -60
  summary "$logs/gpu-tests.log"; status=$?
  if [ "$bench" = 1 ]; then
    # colossal bench gpu: kernels and training steps; then PyTorch on the same cases, side by side
    java "${jflags[@]}" -cp "$cp" io.colossal4j.cli.Main bench gpu --kernel-cache /tmp/c4j-kernels > "$logs/bench-java.csv" 2> "$logs/bench-java.err"
    grep -v WARNING "$logs/bench-java.err" | tail -5
    py=/opt/torch/.venv/bin/python3; [ -x "$py" ] || py=python3
    PYTHONUNBUFFERED=1 "$py" scripts/bench_gpu_torch.py --java "$logs/bench-java.csv" > "$logs/bench-torch.txt" 2>&1
    sed -n '/^case/,$p' "$logs/bench-torch.txt"
  fi
  exit $status
fi

# maven mode: a GPU workstation with a JDK
. scripts/jdk.sh && c4j_find_jdk || exit 1
./mvnw -B -ntp -pl core -am test -Dtest='io.colossal4j.backend.cuda.**,io.colossal4j.distributed.nccl.**' -Dsurefire.failIfNoSpecifiedTests=false 2>&1 | tee "$logs/gpu-tests.log" | grep -E 'Tests run|FAIL|skipping' | tail -20
line=$(grep -E '^\[(INFO|WARNING|ERROR)\] Tests run:' "$logs/gpu-tests.log" | tail -1)
run=$(sed -n 's/.*Tests run: \([0-9]*\).*/\1/p' <<<"$line"); fl=$(sed -n 's/.*Failures: \([0-9]*\).*/\1/p' <<<"$line")
er=$(sed -n 's/.*Errors: \([0-9]*\).*/\1/p' <<<"$line"); sk=$(sed -n 's/.*Skipped: \([0-9]*\).*/\1/p' <<<"$line")
echo "gpu-tests: $(( ${run:-0} - ${fl:-0} - ${er:-0} - ${sk:-0} )) passed, $(( ${fl:-0} + ${er:-0} )) failed, ${sk:-0} skipped"
grep -m1 -o 'no usable CUDA GPU, skipping: .*' "$logs/gpu-tests.log" | head -c 300; echo
if [ "$bench" = 1 ]; then
  java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "core/target/classes:$(cat core/target/classpath.txt 2>/dev/null)" \
    io.colossal4j.cli.Main bench gpu > "$logs/bench-java.csv" && python3 scripts/bench_gpu_torch.py --java "$logs/bench-java.csv"
fi
[ "${fl:-1}" = 0 ] && [ "${er:-1}" = 0 ]
