#!/usr/bin/env bash
# Regenerates tests/HymbaTools.Tests/Quantization/ggml-reference/: the bytes ggml's own quantizers produce
# for tools/ggml-crosscheck inputs, for every block type, without and with an importance vector.
# ggml comes from the ggml sources inside the npm package llama.rn (not committed); it is compiled for
# baseline x86-64 without FMA contraction, the configuration whose bytes llama.cpp's x86-64 builds write.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../tests/HymbaTools.Tests/Quantization/ggml-reference}
work=$(mktemp -d)
(cd "$work" && npm pack --silent llama.rn@0.12.9 >/dev/null && tar xzf llama.rn-0.12.9.tgz package/cpp)
src=$work/package/cpp
gcc -O2 -march=x86-64 -ffp-contract=off -DNDEBUG -I"$src" -I"$src/ggml-cpu" "$here/harness.c" "$src/ggml-quants.c" -lm -o "$work/harness"
mkdir -p "$out"
python3 "$here/make-inputs.py" "$out"
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K IQ4_NL; do
  "$work/harness" "$t" 512 48 < "$out/rows.f32" > "$out/$t.bin"
  "$work/harness" "$t" 512 48 "$out/importance.f32" < "$out/rows.f32" > "$out/$t.imatrix.bin"
done
(cd "$out" && sha256sum *.bin *.f32 > SHA256SUMS)  # relative names: the check works from any clone
rm -rf "$work"
echo "wrote reference vectors to $out"
