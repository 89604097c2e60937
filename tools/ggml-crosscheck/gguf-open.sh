#!/usr/bin/env bash
# Opens GGUF files written by HymbaTools with ggml's own GGUF reader (gguf.cpp from the npm package
# llama.rn, not committed): prints version, key/tensor counts and loads every tensor's data.
# Usage: tools/ggml-crosscheck/gguf-open.sh FILE.gguf [...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
(cd "$work" && npm pack --silent llama.rn@0.12.9 >/dev/null && tar xzf llama.rn-0.12.9.tgz package/cpp)
src=$work/package/cpp
gcc -O1 -c -I"$src" -I"$src/ggml-cpu" "$src/ggml.c" -o "$work/ggml.o"
gcc -O1 -c -I"$src" -I"$src/ggml-cpu" "$src/ggml-quants.c" -o "$work/quants.o"
g++ -O1 -std=c++17 -c -I"$src" "$src/gguf.cpp" -o "$work/gguf.o"
g++ -O1 -std=c++17 -c -I"$src" "$src/ggml-threading.cpp" -o "$work/threading.o"
gcc -c "$here/stubs.c" -o "$work/stubs.o"
g++ -O1 -std=c++17 -I"$src" "$here/ggufcheck.cpp" "$work"/*.o -lm -lpthread -o "$work/ggufcheck"
for f in "$@"; do echo "== $f"; "$work/ggufcheck" "$f"; done
rm -rf "$work"
