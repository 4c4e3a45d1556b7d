#!/bin/bash
# No function in src/ is longer than 80 lines (from its opening to its
# closing brace) unless a comment just above it says why it "cannot be
# split". Functions are found by the tree's style (.clang-format): the
# braces of a function body stand alone in column 0.
#   tests/check_function_length.sh [FILE...]   (default: src/*.c)
set -u
cd "$(dirname "$0")/.."
limit=${FUNCTION_LINES_MAX:-80}
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(src/*.c)
measure() {
    awk -v limit="$limit" '
    FNR == 1 { start = 0; n = 0 }
    { hist[FNR] = $0 }
    /^\{/ { start = FNR; name = ""
            for (k = FNR - 1; k > 0 && k > FNR - 4; k--)
                if (hist[k] ~ /\(/) { name = hist[k]; break }
            exempt = 0
            for (k = FNR - 1; k > 0 && k > FNR - 12; k--)
                if (hist[k] ~ /cannot be split/) exempt = 1 }
    /^\}/ { if (start && FNR - start - 1 > limit && !exempt) {
                sub(/\(.*/, "", name)
                printf "function length: %s:%d %s is %d lines (limit %d)\n", FILENAME, start, name, FNR - start - 1, limit
                bad++ }
            start = 0 }
    END { if (bad) { printf "function length: %d function(s) over %d lines\n", bad, limit; exit 1 }
          print "function length: every function within " limit " lines" }
' "$@"
}

# The check must see a long function when there is one.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
{ echo 'int f(void)'; echo '{'; for _ in $(seq $((limit + 1))); do echo '    g();'; done; echo '}'; } >"$probe"
if measure "$probe" >/dev/null; then
    echo "function length: the check does not see a function of $((limit + 1)) lines" >&2
    exit 1
fi
measure "${files[@]}"
