# The gateway image. Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t gpufleet/gateway .
# The base images are build arguments so that machines without a registry can pass local stand-ins
# (deploy/build-images.sh does); the defaults are the public .NET images.
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime-deps:10.0

FROM ${SDK_IMAGE} AS build
WORKDIR /src
# Restore first, from the project files only, so that a source change does not refetch packages.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/Contracts/GpuFleet.Contracts.csproj src/Contracts/
COPY src/Gateway/GpuFleet.Gateway.csproj src/Gateway/
RUN dotnet restore src/Gateway/GpuFleet.Gateway.csproj -r linux-x64
COPY src/Contracts/ src/Contracts/
COPY src/Gateway/ src/Gateway/
# Self-contained: the runtime image needs no .NET of its own (the same base serves the gateway and the workers).
RUN dotnet publish src/Gateway/GpuFleet.Gateway.csproj -c Release -r linux-x64 --self-contained --no-restore -o /app

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app ./
# Numeric user: works on any base (no passwd entry needed) and satisfies runAsNonRoot.
USER 10001:10001
ENV Gateway__Host=0.0.0.0 \
    Gateway__HttpPort=8000 \
    Gateway__GrpcPort=8001 \
    DOTNET_gcServer=1
EXPOSE 8000 8001
# No curl in the base image: bash speaks HTTP/1.0 to /healthz itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/app/GpuFleet.Gateway"]
