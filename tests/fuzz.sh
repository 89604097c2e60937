#!/usr/bin/env bash
# The long fuzz run: every parser fed HYMBA_FUZZ_ITERATIONS mutations (default here 10000; the normal test run uses 200).
# Usage: bash tests/fuzz.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
export HYMBA_FUZZ_ITERATIONS=${1:-10000}
dotnet test tests/HymbaTools.Tests -c Release --filter "FullyQualifiedName~ParserFuzzTests" --logger "console;verbosity=normal"
