#!/usr/bin/env bash
# Starts GpuFleet locally on the embedded default: builds the worker, makes the demo model (a random-weight
# qwen35 GGUF made through llama.cpp's own API; no download) and serves it on the CPU with the OpenAI API.
#   ./run.sh                              demo model on http://127.0.0.1:8080/v1
#   MODEL=path/to/model.gguf ./run.sh     your own GGUF
#   HTTP_PORT=9000 GRPC_PORT=9001 ./run.sh --slots 8   extra options go to the worker
# Stop with Ctrl-C: the worker drains (in-flight requests finish) and exits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

flavour="${GPUFLEET_NATIVES:-cpu}"
scripts/fetch-natives.sh "$flavour"
dotnet build src/Worker -c Release --nologo -v quiet -p:GpuFleetNativeFlavour="$flavour"
worker=(dotnet src/Worker/bin/Release/net10.0/GpuFleet.Worker.dll)

model="${MODEL:-artifacts/models/demo-qwen35-small.gguf}"
if [[ ! -f "$model" ]]; then
  echo "run.sh: creating the demo model $model (qwen35 architecture, ~160 M random weights, Q8_0)" >&2
  "${worker[@]}" demo-model "$model" --arch qwen35 --size small
fi

http_port="${HTTP_PORT:-8080}"
grpc_port="${GRPC_PORT:-8081}"
model_id="$(basename "$model" .gguf)"
cat <<INFO
GpuFleet worker starting on the CPU with $model
  OpenAI API   http://127.0.0.1:$http_port/v1   (model id: $model_id)
  gRPC (h2c)   127.0.0.1:$grpc_port
  health       http://127.0.0.1:$http_port/readyz    metrics  http://127.0.0.1:$http_port/metrics
Try:
  curl -s http://127.0.0.1:$http_port/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model":"$model_id","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'
Stop with Ctrl-C (the worker drains, then exits). The demo model has random weights: its text is gibberish.
INFO
exec "${worker[@]}" --model "$model" --http-port "$http_port" --grpc-port "$grpc_port" "$@"
