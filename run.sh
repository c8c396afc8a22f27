#!/usr/bin/env bash
# Starts GpuFleet locally on the embedded default: builds the worker and the gateway, makes the demo model (a
# random-weight qwen35 GGUF made through llama.cpp's own API, with the real Qwen3.5 tokenizer and chat template from
# the pinned llama.cpp release; no weights are downloaded), starts two workers on the CPU and one
# gateway in front of them (in-process affinity store; set REDIS=host:port, or a StackExchange.Redis configuration
# string, to use Redis instead).
#   ./run.sh                              gateway on http://127.0.0.1:8000/v1
#   MODEL=path/to/model.gguf ./run.sh     your own GGUF
#   WORKERS=1 ./run.sh --slots 8          extra options go to every worker
# Stop with Ctrl-C: the workers drain (in-flight requests finish), then everything exits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

flavour="${GPUFLEET_NATIVES:-cpu}"
scripts/fetch-natives.sh "$flavour"
tokenizer="$(scripts/fetch-tokenizer.sh)"
dotnet build src/Worker -c Release --nologo -v quiet -p:GpuFleetNativeFlavour="$flavour"
dotnet build src/Gateway -c Release --nologo -v quiet
worker=(dotnet src/Worker/bin/Release/net10.0/GpuFleet.Worker.dll)
gateway=(dotnet src/Gateway/bin/Release/net10.0/GpuFleet.Gateway.dll)

# The folder names the tokenizer: demo models made before the real one (artifacts/models/) are not reused.
model="${MODEL:-artifacts/demo-models/demo-qwen35-small.gguf}"
if [[ ! -f "$model" ]]; then
  echo "run.sh: creating the demo model $model (qwen35 architecture, random weights, Qwen3.5 tokenizer, Q8_0)" >&2
  "${worker[@]}" demo-model "$model" --arch qwen35 --size small --tokenizer "$tokenizer"
fi

count="${WORKERS:-2}"
cores="$(nproc)"
threads=$(( cores / count > 0 ? cores / count : 1 ))
gateway_port="${GATEWAY_PORT:-8000}"
gateway_grpc_port="${GATEWAY_GRPC_PORT:-8001}"
model_id="$(basename "$model" .gguf)"
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

worker_urls=()
for ((i = 0; i < count; i++)); do
  http_port=$((8080 + 10 * i))
  "${worker[@]}" --model "$model" --name "worker-$i" --http-port "$http_port" --grpc-port $((http_port + 1)) \
    --threads "$threads" ${REDIS:+--redis "$REDIS"} "$@" &
  pids+=($!)
  worker_urls+=(--worker "http://127.0.0.1:$http_port")
done
"${gateway[@]}" --http-port "$gateway_port" --grpc-port "$gateway_grpc_port" "${worker_urls[@]}" ${REDIS:+--redis "$REDIS"} &
pids+=($!)

cat <<INFO
GpuFleet starting: $count worker(s) on the CPU with $model, one gateway in front
  OpenAI API   http://127.0.0.1:$gateway_port/v1   (model id: $model_id)
  gRPC (h2c)   127.0.0.1:$gateway_grpc_port
  workers      http://127.0.0.1:$gateway_port/workers    metrics  http://127.0.0.1:$gateway_port/metrics
Try (once the workers are ready, a few seconds):
  curl -s http://127.0.0.1:$gateway_port/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model":"$model_id","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}' -D - 
  (x-gpufleet-worker and x-gpufleet-route say which worker served it and why)
Stop with Ctrl-C (the workers drain, then everything exits). The demo model has random weights: its text is gibberish.
INFO
wait -n "${pids[@]}"
