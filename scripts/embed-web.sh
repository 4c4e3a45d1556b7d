#!/bin/sh
# Writes, on standard output, a C file that holds every file of the pages'
# folder (web/ by default) as a byte array, with the path it is served at
# and its content type, so that the installed service needs nothing else.
# web/index.html is served at "/", web/ops/index.html at "/ops/".
set -eu
dir=${1:-web}
echo "/* Generated from $dir/ by scripts/embed-web.sh: do not edit. */"
echo '#include "web.h"'
echo
i=0
entries=""
for f in $(cd "$dir" && find . -type f ! -name '.*' | LC_ALL=C sort); do
    rel=${f#./}
    case "$rel" in
        *.html) type="text/html; charset=utf-8" ;;
        *.css) type="text/css; charset=utf-8" ;;
        *.js) type="text/javascript; charset=utf-8" ;;
        *.svg) type="image/svg+xml" ;;
        *.png) type="image/png" ;;
        *.json) type="application/json" ;;
        *) echo "embed-web.sh: no content type for $rel" >&2; exit 1 ;;
    esac
    case "$rel" in
        index.html) path="/" ;;
        */index.html) path="/${rel%index.html}" ;;
        *) path="/$rel" ;;
    esac
    echo "static const unsigned char asset_$i[] = {"
    od -An -v -tx1 "$dir/$rel" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
    echo "};"
    entries="$entries    { \"$path\", \"$type\", asset_$i, sizeof(asset_$i) },
"
    i=$((i + 1))
done
echo
echo "const struct web_asset web_assets[] = {"
printf '%s' "$entries"
echo "};"
echo "const size_t web_asset_count = $i;"
