'use strict';
// A grpc-js client against a C# server (Grpc.AspNetCore; a worker or the gateway): node client.js <host:port> <scenario> [tag]
// Prints one JSON line with the outcome ({ok, code, details, ...}) and exits 0; a non-zero exit means the script
// itself failed. A gRPC error is an outcome, not a failure: the C# test decides what was expected.
const { grpc, InteropTest, Inference, Health, ReflectionV1Alpha, ReflectionV1 } = require('./protos');

const [address, scenario, tag = ''] = process.argv.slice(2);
const credentials = grpc.credentials.createInsecure();
const interop = new InteropTest(address, credentials);
const longDeadline = () => Date.now() + 30_000;

function finish(result) {
  process.stdout.write(JSON.stringify({ scenario, ...result }) + '\n', () => process.exit(0));
}

function failure(err) {
  return { ok: false, code: err.code, details: err.details };
}

function unary(client, method, request, options) {
  return new Promise((resolve) => {
    client[method](request, options, (err, response) => resolve(err ? failure(err) : { ok: true, response }));
  });
}

function collect(call, onData) {
  return new Promise((resolve) => {
    const messages = [];
    let error = null;
    let headers = {};
    call.on('metadata', (metadata) => {
      headers = metadata.getMap();
    });
    call.on('data', (message) => {
      messages.push(message);
      if (onData) onData(messages.length);
    });
    call.on('error', (err) => {
      error = err;
    });
    call.on('status', (status) => {
      resolve(error ? { ...failure(error), messages, headers } : { ok: status.code === 0, code: status.code, messages, headers });
    });
  });
}

const scenarios = {
  unary: () => unary(interop, 'Echo', { text: 'héllo ✓ 100%' }, { deadline: longDeadline() }),

  stream: () => collect(interop.Count({ count: 5, interval_ms: 5 }, { deadline: longDeadline() })),

  // The server waits far longer than our deadline. A first call connects the channel: a deadline that ran out
  // while connecting would never reach the server. 2 s, not less: on a loaded 2-core CI machine a shorter
  // deadline could pass before grpc-js even sent the call.
  deadline: async () => {
    await unary(interop, 'Echo', { text: 'warm-up' }, { deadline: longDeadline() });
    return unary(interop, 'Echo', { text: 'late', behaviour: { delay_ms: 20_000, tag } }, { deadline: Date.now() + 2000 });
  },

  // Cancel mid-stream, after three messages.
  cancel: () => {
    const call = interop.Count({ count: 100_000, interval_ms: 20, behaviour: { tag } }, { deadline: longDeadline() });
    return collect(call, (received) => {
      if (received === 3) call.cancel();
    });
  },

  error: () => unary(interop, 'Echo', { text: 'x', behaviour: { fail_code: 5, fail_message: 'nøt føund: 100% ✓\tdone' } }, {}),

  'stream-error': () => collect(interop.Count({ count: 3, behaviour: { fail_code: 9, fail_message: 'stopped after 3' } }, {})),

  unexpected: () => unary(interop, 'Echo', { text: 'x', behaviour: { throw_unexpected: true } }, {}),

  unimplemented: () => unary(interop, 'Unmapped', { text: 'x' }, {}),

  'request-too-large': () => unary(interop, 'Echo', { text: 'big', padding: Buffer.alloc(5 * 1024 * 1024, 7) }, { deadline: longDeadline() }),

  health: async () => {
    const health = new Health(address, credentials);
    const server = await unary(health, 'Check', { service: '' }, { deadline: longDeadline() });
    const unknown = await unary(health, 'Check', { service: 'no.such.Service' }, { deadline: longDeadline() });
    return { ok: true, server, unknown };
  },

  // grpcurl's "list": both reflection versions, each asked for the service names over its bidirectional stream.
  reflection: async () => {
    const list = (Service) => new Promise((resolve) => {
      const call = new Service(address, credentials).ServerReflectionInfo({ deadline: longDeadline() });
      let services = null;
      call.on('data', (response) => {
        services = response.list_services_response ? response.list_services_response.service.map((s) => s.name) : null;
      });
      call.on('error', (err) => resolve(failure(err)));
      call.on('end', () => resolve({ ok: services !== null, services }));
      call.write({ list_services: '' });
      call.end();
    });
    return { ok: true, v1alpha: await list(ReflectionV1Alpha), v1: await list(ReflectionV1) };
  },

  generate: () => {
    const inference = new Inference(address, credentials);
    const request = {
      chat: {
        messages: [{ role: 'user', content: 'Say hi' }],
        tools: [{ name: 'lookup', description: 'Looks up', parameters_json: '{"type":"object"}' }],
        enable_thinking: false,
      },
      sampling: { temperature: 0.5, seed: '42' },
      max_tokens: 3,
      stop: ['\n'],
      model: tag || 'demo',
    };
    return collect(inference.Generate(request, { deadline: longDeadline() }));
  },

  // A conversation with a long system prompt (a few KB, several of the gateway's prefix blocks), twice: the gateway
  // reads the gRPC request's prompt and routes the second call by prefix affinity (x-gpufleet-route in the headers).
  'generate-twice': async () => {
    const inference = new Inference(address, credentials);
    const rules = Array.from({ length: 30 }, (_, i) => `Rule ${i}: keep answers short and cite file ${i}.`).join('\n');
    const request = {
      chat: { messages: [{ role: 'system', content: rules }, { role: 'user', content: 'Say hi' }], enable_thinking: false },
      max_tokens: 2,
      model: tag || 'demo',
    };
    const first = await collect(inference.Generate(request, { deadline: longDeadline() }));
    const second = await collect(inference.Generate(request, { deadline: longDeadline() }));
    return { ok: first.ok && second.ok, first, second };
  },
};

const run = scenarios[scenario];
if (!run) {
  process.stderr.write(`unknown scenario '${scenario}'\n`);
  process.exit(2);
}

run().then(finish, (err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
