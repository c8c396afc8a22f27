'use strict';
// Loads the SAME .proto files the C# projects compile (src/Contracts/Protos and the test proto), so the interop
// tests also prove that an independent protobuf implementation reads our contracts. grpc.health.v1 and
// grpc.reflection come from grpc-node's own packages (grpc-health-check, @grpc/reflection), as ours come from grpc-dotnet.
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const definition = protoLoader.loadSync(
  [
    'gpufleet/v1/inference.proto',
    'gpufleet/v1/worker.proto',
    'health/v1/health.proto',
    'grpc/reflection/v1alpha/reflection.proto',
    'grpc/reflection/v1/reflection.proto',
    'interop_test.proto',
  ],
  {
    includeDirs: [
      path.join(repoRoot, 'src', 'Contracts', 'Protos'),
      path.join(repoRoot, 'tests', 'GpuFleet.Contracts.Tests', 'Protos'),
      path.join(__dirname, 'node_modules', 'grpc-health-check', 'proto'),
      path.join(__dirname, 'node_modules', '@grpc', 'reflection', 'build', 'proto'),
    ],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);
const loaded = grpc.loadPackageDefinition(definition);

module.exports = {
  grpc,
  InteropTest: loaded.gpufleet.test.v1.InteropTest,
  Inference: loaded.gpufleet.v1.Inference,
  WorkerStatusService: loaded.gpufleet.v1.WorkerStatusService,
  Health: loaded.grpc.health.v1.Health,
  ReflectionV1Alpha: loaded.grpc.reflection.v1alpha.ServerReflection,
  ReflectionV1: loaded.grpc.reflection.v1.ServerReflection,
};
