'use strict';
// Loads the SAME .proto files the C# projects compile (src/Contracts/Protos and the test proto), so the interop
// tests also prove that an independent protobuf implementation reads our contracts.
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const definition = protoLoader.loadSync(
  ['gpufleet/v1/inference.proto', 'gpufleet/v1/worker.proto', 'grpc/health/v1/health.proto', 'interop_test.proto'],
  {
    includeDirs: [
      path.join(repoRoot, 'src', 'Contracts', 'Protos'),
      path.join(repoRoot, 'tests', 'GpuFleet.Contracts.Tests', 'Protos'),
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
};
