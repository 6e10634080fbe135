#!/usr/bin/env bash
# Checks that every tracked C++ file is as clang-format (the repository's
# .clang-format, clang-format 14 from Debian 12) would write it. Prints the
# files that are not and how to fix them; exits non-zero if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

# The file list comes from git; outside a checkout there is nothing to check
# against, which must not pass as "all formatted".
git rev-parse --is-inside-work-tree >/dev/null

bad=()
while IFS= read -r -d '' file; do
  # -Werror turns --dry-run's "would change" warnings into a non-zero exit.
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(git ls-files -z -- '*.cpp' '*.hpp')

if [ "${#bad[@]}" -gt 0 ]; then
  echo "not formatted with clang-format (${#bad[@]} files):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix with: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "format: every tracked *.cpp/*.hpp is clang-formatted"
