#!/bin/sh
# Is the tree formatted by its own .clang-format? (issue 11 item 9)
# Run from anywhere; exits non-zero and names the files that differ.
# .ci/run runs it; `clang-format-14 -i` on the same files fixes what it finds.
set -eu
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format-14}
git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 'tests/*.h' 'examples/*.c' |
  xargs "$fmt" --dry-run --Werror
