#!/usr/bin/env bash
# Coverage-guided fuzzing of a regmix fuzz target with libFuzzer (clang) and ASan/UBSan.
#   scripts/fuzz.sh TARGET [SECONDS]      TARGET: frame | spec
# Configures build-fuzz with -Dfuzz=enabled (meson builds tests/fuzz/fuzz_TARGET_libfuzzer), then
# fuzzes from the committed inputs (frame: tests/fuzz/corpus/frame; spec: tests/fixtures).
# New interesting inputs go to a scratch corpus in build-fuzz; a crash leaves crash-* in the
# current folder: add it to the committed inputs so the `fuzz` suite replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh frame|spec [SECONDS]}
secs=${2:-60}
case $target in
  frame) seeds=(tests/fuzz/corpus/frame) ;;
  spec) seeds=(tests/fixtures/bad) ;;
  *) echo "scripts/fuzz.sh: unknown target '$target' (frame or spec)" >&2; exit 2 ;;
esac
scripts/setup.sh build >/dev/null
if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=enabled -Dgpu=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-fuzz "tests/fuzz/fuzz_${target}_libfuzzer" >/dev/null
scratch=build-fuzz/corpus-$target
mkdir -p "$scratch"
# libFuzzer reads corpus folders only: the full spec goes into the scratch corpus.
[ "$target" = spec ] && cp tests/fixtures/spec_full.yaml "$scratch/"
"build-fuzz/tests/fuzz/fuzz_${target}_libfuzzer" -max_total_time="$secs" "$scratch" "${seeds[@]}"
