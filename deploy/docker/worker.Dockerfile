# The worker image, CPU or CUDA. Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t gpufleet/worker-cpu .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg NATIVES=cuda \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04 -t gpufleet/worker-cuda .
# NATIVES picks the pinned llama.cpp libraries (natives/natives.lock), fetched and verified during the build by
# scripts/fetch-natives.sh exactly as on a developer machine. The CUDA flavour needs the CUDA 13 runtime
# (libcudart, libcublas) from its base image and the NVIDIA driver from the host (NVIDIA container toolkit).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime-deps:10.0

FROM ${SDK_IMAGE} AS build
ARG NATIVES=cpu
# The natives come from npm (node-llama-cpp's platform packages); openssl checks their integrity.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /src
COPY natives/ natives/
COPY scripts/fetch-natives.sh scripts/npm-pack-verified.sh scripts/
RUN scripts/fetch-natives.sh "$NATIVES" && rm -rf .natives/cache
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/Contracts/GpuFleet.Contracts.csproj src/Contracts/
COPY src/Worker/GpuFleet.Worker.csproj src/Worker/
RUN dotnet restore src/Worker/GpuFleet.Worker.csproj -r linux-x64
COPY src/Contracts/ src/Contracts/
COPY src/Worker/ src/Worker/
RUN dotnet publish src/Worker/GpuFleet.Worker.csproj -c Release -r linux-x64 --self-contained --no-restore \
      -p:GpuFleetNativeFlavour="$NATIVES" -o /app

FROM ${RUNTIME_IMAGE}
# A CUDA base image may lack what .NET needs at run time (the CPU base has it): add only what is missing.
RUN if ! ldconfig -p | grep -q 'libssl.so.3'; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY --from=build /app ./
# The model volume's mount point, owned by the worker's user so that a new named volume is writable (demo models).
RUN mkdir /models && chown 10001:10001 /models
USER 10001:10001
ENV Worker__Host=0.0.0.0 \
    Worker__HttpPort=8080 \
    Worker__GrpcPort=8081
EXPOSE 8080 8081
# /healthz answers while the model loads; readiness (/readyz) is for the orchestrator to route by.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/app/GpuFleet.Worker"]
# The model goes on a volume at /models (compose: a demo model made at start; Kubernetes: a verified GGUF).
CMD ["--model", "/models/model.gguf"]
