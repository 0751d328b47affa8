#!/usr/bin/env bash
# Runs every test suite of regmix: sets up (packages, build), runs `meson test` on the normal
# build, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit,
# proto and cli suites there. Prints one closing line "N passed, N failed, N skipped".
#   scripts/test.sh            all of it
#   REGMIX_NO_SANITIZE=1 scripts/test.sh   skip the sanitizer build
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build || exit 1

status=0
meson test -C build --print-errorlogs --num-processes 2 || status=1
cp build/meson-logs/testlog.json /tmp/regmix-testlog-main.json 2>/dev/null || true
logs=(build/meson-logs/testlog.json)

if [ -z "${REGMIX_NO_SANITIZE:-}" ]; then
  if scripts/setup.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dgpu=disabled; then
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite proto --suite cli || status=1
    logs+=(build-asan/meson-logs/testlog.json)
  else
    echo "test: sanitizer build failed" >&2
    status=1
  fi
fi

python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
