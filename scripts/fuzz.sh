#!/usr/bin/env bash
# Coverage-guided fuzzing of a regmix fuzz target with libFuzzer (clang) and ASan/UBSan.
#   scripts/fuzz.sh TARGET [SECONDS]      TARGET: frame | spec
# New interesting inputs go to a scratch corpus; a crash leaves crash-* in the current folder:
# add it to tests/fuzz/corpus/TARGET/ so the `fuzz` suite replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh frame|spec [SECONDS]}
secs=${2:-60}
scripts/setup.sh build
out=build/fuzz-$target
mkdir -p "$out/corpus"
srcs=(tests/fuzz/fuzz_"$target".c)
CC=clang meson setup build-fuzz -Dgpu=disabled -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null 2>&1 || true
ninja -C build-fuzz common/libregmix_common.a proto/libregmix_proto.a >/dev/null
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon -Ibuild-fuzz -Ibuild-fuzz/proto \
  "${srcs[@]}" build-fuzz/common/libregmix_common.a build-fuzz/proto/libregmix_proto.a \
  $(pkg-config --libs libprotobuf-c libzmq libfyaml jansson) -lm -o "$out/fuzzer"
"$out/fuzzer" -max_total_time="$secs" "$out/corpus" "tests/fuzz/corpus/$target"
