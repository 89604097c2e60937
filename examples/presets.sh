#!/usr/bin/env bash
# Regenerates the README's "Which preset for Hymba" table: q4_0, q4_k_m, iq4_nl and iq4_nl_m, each plain and with an
# importance matrix from Emma, compared with the example model on 4,096 held-out tokens of Persuasion; and the
# size of each preset at Hymba-1.5B shapes (dry run on the 1.5b preset's config, no weights needed).
# Usage: bash examples/presets.sh   (outputs in examples/out/presets/)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/HymbaTools.Cli -c Release -v q -nologo
hymba() { dotnet run --no-build --project src/HymbaTools.Cli -c Release -- "$@"; }
out=examples/out/presets
mkdir -p "$out"
model=examples/hymba-austen
hymba imatrix "$model" --text examples/data/emma.txt --chunk 256 --chunks 16 -o "$out/imatrix.safetensors" -q
artifacts=()
for preset in q4_0 q4_k_m iq4_nl iq4_nl_m; do
  hymba quantize "$model" --type "$preset" -o "$out/$preset.gguf" -q
  hymba quantize "$model" --type "$preset" --imatrix "$out/imatrix.safetensors" -o "$out/$preset-imatrix.gguf" -q
  artifacts+=("$out/$preset.gguf" "$out/$preset-imatrix.gguf")
done
hymba compare "$model" "${artifacts[@]}" --text examples/data/persuasion.txt --max-tokens 4096 --markdown-out "$out/comparison.md" -q
rm -rf "$out/h15" && hymba init "$out/h15" --preset 1.5b --config-only -q
for preset in q4_0 q4_k_m iq4_nl iq4_nl_m; do
  echo "$preset at 1.5B: $(hymba quantize "$out/h15" --type "$preset" --dry-run | tail -n 1)"
done
