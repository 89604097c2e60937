#!/usr/bin/env bash
# The README's main command: build HymbaTools and run the pipeline on the example checkpoint.
# Usage: bash examples/run.sh [CHECKPOINT_DIR]   (default: a small random-weight Hymba written by `hymba init`)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/HymbaTools.Cli -c Release -v q -nologo
hymba() { dotnet run --no-build --project src/HymbaTools.Cli -c Release -- "$@"; }

out=examples/out
mkdir -p "$out"
checkpoint=${1:-}
if [ -z "$checkpoint" ]; then
  checkpoint=$out/small-random
  echo "== hymba init $checkpoint --preset small --seed 1 (random weights; the trained example model replaces this)"
  hymba init "$checkpoint" --preset small --seed 1
fi

echo "== hymba inspect $checkpoint"
hymba inspect "$checkpoint"
echo "== hymba verify $checkpoint (self-checks)"
hymba verify "$checkpoint"
echo "== hymba verify tests/fixtures/hymba-tiny/tiny-b --golden (official PyTorch logits)"
hymba verify tests/fixtures/hymba-tiny/tiny-b --golden tests/fixtures/hymba-tiny/tiny-b/golden.safetensors
