#!/usr/bin/env bash
# Starts GpuFleet locally on the embedded default: builds the worker, makes the demo model (a random-weight
# qwen35 GGUF made through llama.cpp's own API; no download) and streams generations on the CPU.
#   ./run.sh                      demo model, 4 concurrent streams
#   MODEL=path/to/model.gguf ./run.sh     your own GGUF
#   ./run.sh --prompt "..." --streams 8   extra options go to the worker's generate command
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

scripts/fetch-natives.sh "${GPUFLEET_NATIVES:-cpu}"
dotnet build src/Worker -c Release --nologo -v quiet -p:GpuFleetNativeFlavour="${GPUFLEET_NATIVES:-cpu}"
worker=(dotnet src/Worker/bin/Release/net10.0/GpuFleet.Worker.dll)

model="${MODEL:-artifacts/models/demo-qwen35-small.gguf}"
if [[ ! -f "$model" ]]; then
  echo "run.sh: creating the demo model $model (qwen35 architecture, ~160 M random weights, Q8_0)" >&2
  "${worker[@]}" demo-model "$model" --arch qwen35 --size small
fi

echo "run.sh: streaming from the worker engine (the network APIs arrive with the worker service)" >&2
exec "${worker[@]}" generate --model "$model" --streams 4 --max-tokens 64 "$@"
