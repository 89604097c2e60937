#!/usr/bin/env bash
# Regenerates the README's "Which preset for Hymba" table: q4_0, q4_k_m, iq4_nl and iq4_nl_m, each plain and with an
# importance matrix from Emma, compared with the example model on 4,096 held-out tokens of Persuasion; and the
# size of each preset at Hymba-1.5B shapes (dry run on the 1.5b preset's config, no weights needed).
# Then the rows of "Bit budget and GPTQ": --target-bpw 5.80 (rtn, gptq, gptq + imatrix), q4_0 with gptq, ONNX int4
# with gptq and with a bit budget of 6.6 bits per weight (rtn, gptq); calibration is always Emma, evaluation
# Persuasion; and `bench costs` (how the layer-output error and the importance-weighted error rank against KL).
# With RUN_1_5B=1 also the 1.5b preset's --target-bpw 4.9 --method gptq conversion (writes a 3 GB random checkpoint;
# prints wall time, CPU time and peak RSS) and `bench costs` on a 2-layer cut of it.
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
calibration=(--calibration examples/data/emma.txt --chunks 4)
hymba quantize "$model" --target-bpw 5.80 "${calibration[@]}" -o "$out/bpw5.80.gguf" -q
hymba quantize "$model" --target-bpw 5.80 --method gptq "${calibration[@]}" -o "$out/bpw5.80-gptq.gguf" -q
hymba quantize "$model" --target-bpw 5.80 --method gptq "${calibration[@]}" --imatrix "$out/imatrix.safetensors" -o "$out/bpw5.80-gptq-imatrix.gguf" -q
hymba quantize "$model" --type q4_0 --method gptq --calibration examples/data/emma.txt -o "$out/q4_0-gptq.gguf" -q
hymba quantize "$model" --type q4_0 --method gptq --calibration examples/data/emma.txt --imatrix "$out/imatrix.safetensors" -o "$out/q4_0-gptq-imatrix.gguf" -q
hymba export "$model" --format onnx --type int4 --force -o "$out/onnx-int4" -q
hymba export "$model" --format onnx --type int4 --method gptq --calibration examples/data/emma.txt --force -o "$out/onnx-int4-gptq" -q
hymba export "$model" --format onnx --type int4 --target-bpw 6.6 --calibration examples/data/emma.txt --force -o "$out/onnx-int4-b6.6" -q
hymba export "$model" --format onnx --type int4 --target-bpw 6.6 --method gptq --calibration examples/data/emma.txt --force -o "$out/onnx-int4-b6.6-gptq" -q
artifacts+=("$out/bpw5.80.gguf" "$out/bpw5.80-gptq.gguf" "$out/bpw5.80-gptq-imatrix.gguf" "$out/q4_0-gptq.gguf" "$out/q4_0-gptq-imatrix.gguf"
            "$out/onnx-int4" "$out/onnx-int4-gptq" "$out/onnx-int4-b6.6" "$out/onnx-int4-b6.6-gptq")
hymba compare "$model" "${artifacts[@]}" --text examples/data/persuasion.txt --max-tokens 4096 --markdown-out "$out/comparison.md" -q
hymba bench costs "$model" --calibration examples/data/emma.txt --chunks 4 --target-bpw 5.3,5.8,6.5 | tee "$out/costs.txt"
rm -rf "$out/h15" && hymba init "$out/h15" --preset 1.5b --config-only -q
for preset in q4_0 q4_k_m iq4_nl iq4_nl_m; do
  echo "$preset at 1.5B: $(hymba quantize "$out/h15" --type "$preset" --dry-run | tail -n 1)"
done
if [ "${RUN_1_5B:-0}" = 1 ]; then
  rm -rf "$out/h15w" && hymba init "$out/h15w" --preset 1.5b -q
  cp "$model/tokenizer.model" "$out/h15w/"   # random weights: any tokenizer whose ids fit the vocabulary serves for calibration
  uptime
  /usr/bin/time -v dotnet src/HymbaTools.Cli/bin/Release/net10.0/linux-x64/hymba.dll quantize "$out/h15w" --target-bpw 4.9 --method gptq \
    --calibration examples/data/emma.txt --threads 2 -o "$out/h15w-4.9-gptq.gguf" 2> "$out/h15w.time"
  uptime
  grep -E "note: gptq 32 layers|Elapsed|User time|System time|Maximum resident" "$out/h15w.time"
  rm -rf "$out/h15w-2l" && hymba init "$out/h15w-2l" --preset 1.5b --layers 2 -q && cp "$model/tokenizer.model" "$out/h15w-2l/"
  hymba bench costs "$out/h15w-2l" --calibration examples/data/emma.txt --chunks 4 --target-bpw 4.9,5.3,5.8 --threads 2 | tee "$out/costs-1.5b-2l.txt"
fi
