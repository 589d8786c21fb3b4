#!/bin/sh
# Run the built libFuzzer targets, each for SECONDS, under ASan+UBSan (the
# fuzz build instruments everything: meson setup -Dfuzz=true with clang).
# Builds nothing; fails (non-zero) when any target finds a crash, a leak, a
# sanitizer report or a timeout, and leaves the input in BUILDDIR/fuzz-artifacts/.
#
#   tests/fuzz/run.sh SECONDS [BUILDDIR [TARGET...]]
#
#   BUILDDIR  the fuzz build (default: buildfuzz)
#   TARGET    fuzz_image, fuzz_unpack, ... (default: every one built)
# Seeds: made once from the suite's fixtures ($SBX_FUZZ_FIXTURES, default
# build/tests/fixtures) by tests/fuzz/seeds.py into BUILDDIR/fuzz-seeds/;
# what a run finds is kept in BUILDDIR/fuzz-corpus/TARGET for the next run.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SECONDS [BUILDDIR [TARGET...]]" >&2; exit 2; }
seconds=$1
build=${2:-buildfuzz}
[ $# -ge 2 ] && shift 2 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${SBX_FUZZ_FIXTURES:-$here/../../build/tests/fixtures}
seeds=$build/fuzz-seeds
artifacts=$build/fuzz-artifacts
[ -d "$seeds" ] || python3 "$here/seeds.py" "$fixtures" "$seeds"
mkdir -p "$artifacts"

targets=$*
[ -n "$targets" ] || targets=$(cd "$build/tests/fuzz" && find . -maxdepth 1 -name "fuzz_*" -type f -perm -u+x | sed "s|^./||" | sort)
[ -n "$targets" ] || { echo "run.sh: no fuzz targets in $build/tests/fuzz" >&2; exit 1; }
# Scratch directories (fuzz_unpack makes one per input) on tmpfs when there is
# one, all beneath one directory of this run's, removed at the end: libFuzzer
# ends a run (-max_total_time) between inputs, but not always after an input's
# own clean-up.
base=${TMPDIR:-}
[ -n "$base" ] || { [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm; } || base=/tmp
scratch=$(mktemp -d "$base/sbx-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in $targets; do
  corpus=$build/fuzz-corpus/$t
  mkdir -p "$corpus" "$seeds/$t"
  echo "== $t: $seconds s"
  # A target's leak suppressions (a library's own leaks, explained there),
  # matched by function name: with the full unwinder for that target.
  lsan=${LSAN_OPTIONS:-} asan=$ASAN_OPTIONS
  if [ -f "$here/$t.supp" ]; then
    lsan="${lsan:+$lsan:}suppressions=$here/$t.supp"
    asan="$asan:fast_unwind_on_malloc=0"
  fi
  # -max_len: metadata and profiles are small; 64 KiB holds a layer with a
  # few entries. -timeout: an input taking 30 s is a bug (a hang).
  if ! LSAN_OPTIONS=$lsan ASAN_OPTIONS=$asan "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=30 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
      "$corpus" "$seeds/$t" 2>"$build/fuzz-$t.log"; then
    failed=1
    echo "== $t FAILED (log: $build/fuzz-$t.log)"
    grep -A40 -m1 'ERROR: \|runtime error\|==ERROR\|deadly signal\|Timeout' "$build/fuzz-$t.log" | head -60
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/fuzz-$t.log" || true
  grep -E '^#[0-9]+.*(DONE|cov:)' "$build/fuzz-$t.log" | tail -1 || true
done
exit $failed
