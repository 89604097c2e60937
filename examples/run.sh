#!/usr/bin/env bash
# The README's main command: build HymbaTools and run the whole pipeline on the example model
# (examples/hymba-austen, a small Hymba trained here on Jane Austen): inspect, verify, quantize to several
# GGUF levels (plain and with an importance matrix), export ONNX (f32, int8, int4) and verify it in ONNX
# Runtime, compare everything with the reference on held-out text, and generate a few sentences. Outputs go to examples/out/.
# Usage: bash examples/run.sh [CHECKPOINT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/HymbaTools.Cli -c Release -v q -nologo
hymba() { dotnet run --no-build --project src/HymbaTools.Cli -c Release -- "$@"; }

checkpoint=${1:-examples/hymba-austen}
out=examples/out
mkdir -p "$out"
heldout=examples/data/persuasion.txt

echo "== inspect $checkpoint"
hymba inspect "$checkpoint"
echo "== verify $checkpoint (self-checks: finite, prefill+decode = full forward, batch = single, deterministic)"
hymba verify "$checkpoint"
echo "== verify the reference forward pass against the official PyTorch logits (golden fixture)"
hymba verify tests/fixtures/hymba-tiny/tiny-b --golden tests/fixtures/hymba-tiny/tiny-b/golden.safetensors

calibration=()
if [ -f "$checkpoint/tokenizer.model" ]; then
  echo "== imatrix on training text (Emma), evaluated later on the held-out novel"
  hymba imatrix "$checkpoint" --text examples/data/emma.txt --chunk 256 --chunks 16 -o "$out/imatrix.safetensors"
  calibration=(--imatrix "$out/imatrix.safetensors")
fi

artifacts=()
for preset in f32 q8_0 q6_k q5_k_m q4_k_m iq4_nl_m q4_0; do
  echo "== quantize $preset"
  hymba quantize "$checkpoint" --type "$preset" -o "$out/model-$preset.gguf"
  artifacts+=("$out/model-$preset.gguf")
done
if [ ${#calibration[@]} -gt 0 ]; then
  for preset in q4_k_m q4_0; do
    hymba quantize "$checkpoint" --type "$preset" "${calibration[@]}" -o "$out/model-$preset-imatrix.gguf"
    artifacts+=("$out/model-$preset-imatrix.gguf")
  done
fi
echo "== verify the f32 GGUF (self-checks; the comparison below shows it equal to the checkpoint: KL 0)"
hymba verify "$out/model-f32.gguf"

for type in f32 int8 int4; do
  echo "== export ONNX $type, then verify it in ONNX Runtime (self-checks and a comparison with the checkpoint)"
  hymba export "$checkpoint" --format onnx --type "$type" --force -o "$out/onnx-$type"
  hymba verify "$out/onnx-$type"
  artifacts+=("$out/onnx-$type")
done

echo "== compare every artifact with the reference"
text=(--random-tokens 4097)   # a checkpoint without a tokenizer: random ids, and the report says so
[ -f "$checkpoint/tokenizer.model" ] && text=(--text "$heldout")
hymba compare "$checkpoint" "${artifacts[@]}" "${text[@]}" --max-tokens 4096 \
  --markdown-out "$out/comparison.md" --json-out "$out/comparison.json" --svg-out "$out/comparison.svg"

if [ -f "$checkpoint/tokenizer.model" ]; then
  echo "== generate"
  hymba generate "$checkpoint" --prompt "It was a truth universally acknowledged" --max-new-tokens 60 --seed 1
  hymba generate "$out/model-q4_k_m.gguf" --tokenizer "$checkpoint" --prompt "Captain Wentworth" --max-new-tokens 40 --seed 2
  hymba generate "$out/onnx-int4" --prompt "Captain Wentworth" --max-new-tokens 40 --seed 2
fi
echo "== done: reports in $out/comparison.{md,json,svg}"
