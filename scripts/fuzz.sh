#!/usr/bin/env bash
# Coverage-guided fuzzing of P-8's parsers of outside input (libFuzzer with the address sanitizer).
#
#   scripts/fuzz.sh [--seconds N] [target...]   build, then run each target (default: all) for N s (60)
#   scripts/fuzz.sh --build                     only build .build-fuzz/p8-fuzz
#   scripts/fuzz.sh --binary FILE ...           run an already built binary (e.g. a copy, for long runs)
#   scripts/fuzz.sh --list                      the target names
#   scripts/fuzz.sh --seed N ...                libFuzzer's random seed (CI fixes it, so that a run differs from
#                                               the last only by how far it gets in its time)
#
# The harness (Tests/Fuzz/Targets) is compiled together with the GRIP sources and p8ctl's time parser into
# one binary; swift-crypto's objects come from the debug build (`swift build` first, done here). Seeds are
# Tests/Fuzz/Corpus/<target>; new inputs go to .build-fuzz/corpus/<target>, crashes and property failures
# to .build-fuzz/crashes/<target>/ (rerun one with: P8_FUZZ_TARGET=<target> .build-fuzz/p8-fuzz <file>).
# Targets run one after another, never side by side. Exits non-zero when any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

out=.build-fuzz
binary=$out/p8-fuzz
targets=(json tnetstring json-patch publish-json publish-tnetstring instruct-headers instruct-json routes config
  ws-events ws-control grip-sig ctl-time)
seconds=60
seed=0
build_only=false
prebuilt=false
selected=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --build) build_only=true; shift ;;
    --binary) binary=$2; prebuilt=true; shift 2 ;;
    --list) printf '%s\n' "${targets[@]}"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) selected+=("$1"); shift ;;
  esac
done
((${#selected[@]})) || selected=("${targets[@]}")

build() {
  swift build --target Crypto >/dev/null
  local debug
  debug=$(swift build --show-bin-path)
  mkdir -p "$out"
  local crypto=$out/libp8-fuzz-crypto.a
  rm -f "$crypto"
  find "$debug"/{Crypto,CCryptoBoringSSL,CCryptoBoringSSLShims,CryptoBoringWrapper}.build -name '*.o' -print0 \
    | xargs -0 ar rcs "$crypto"
  local features=() feature
  for feature in ExistentialAny MemberImportVisibility InternalImportsByDefault NonisolatedNonsendingByDefault; do
    features+=(-enable-upcoming-feature "$feature")
  done
  local sources
  mapfile -t sources < <(find Sources/GRIP Tests/Fuzz/Targets -name '*.swift' | sort)
  swiftc -module-name P8Fuzz -package-name P8 -parse-as-library -swift-version 6 -warnings-as-errors \
    "${features[@]}" -sanitize=fuzzer,address -O -g \
    -I "$debug/Modules" "${sources[@]}" Sources/p8ctl/Support/TimeFormat.swift "$crypto" -o "$binary" \
    2> >(grep -v "Cannot export local symbol" >&2)
}

if ! $prebuilt; then
  start=$SECONDS
  build
  echo "fuzz build: $((SECONDS - start)) s"
fi
$build_only && exit 0

failed=()
for target in "${selected[@]}"; do
  mkdir -p "$out/corpus/$target" "$out/crashes/$target"
  log=$out/$target.log
  echo "== fuzz $target (${seconds}s)"
  # -timeout: one input taking 10 s is a failure (a hang); -max_len bounds inputs as the seeds do.
  # The Swift backtracer is off: under the address sanitizer it faults itself and hides the report.
  if SWIFT_BACKTRACE=enable=no P8_FUZZ_TARGET=$target "$binary" -seed="$seed" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/crashes/$target/" \
    "$out/corpus/$target" "Tests/Fuzz/Corpus/$target" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" | tr '\n' ' '
    echo
  else
    failed+=("$target")
    grep -E -A3 'property does not hold|ERROR: (AddressSanitizer|libFuzzer)|Fatal error' "$log" | head -20
    ls "$out/crashes/$target"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz failures: ${failed[*]} (logs in $out/)" >&2
  exit 1
fi
