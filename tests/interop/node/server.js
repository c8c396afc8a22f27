'use strict';
// A grpc-js server for the C# client (Grpc.Net.Client): node server.js
// Binds 127.0.0.1 on a free port and prints "LISTENING <port>"; prints "OBSERVED <tag> <what>" when a tagged call
// is cancelled or completes; exits when its stdin closes, so it never outlives the test that started it.
const { grpc, InteropTest } = require('./protos');

function observed(tag, what) {
  if (tag) process.stdout.write(`OBSERVED ${tag} ${what}\n`);
}

function watchCancellation(call, tag) {
  const state = { cancelled: false, wake: null };
  call.on('cancelled', () => {
    state.cancelled = true;
    observed(tag, 'cancelled');
    if (state.wake) state.wake();
  });
  return state;
}

// Waits, but wakes at once when the call is cancelled (client reset or deadline).
function pause(ms, state) {
  if (!ms || state.cancelled) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    state.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

function deadlineSeen(call) {
  const deadline = call.getDeadline();
  if (deadline === Infinity) return '';
  return String(Math.round(new Date(deadline).getTime() - Date.now()));
}

async function echo(call, callback) {
  const behaviour = call.request.behaviour || {};
  const state = watchCancellation(call, behaviour.tag);
  await pause(behaviour.delay_ms, state);
  if (state.cancelled) return;
  if (behaviour.fail_code) {
    callback({ code: behaviour.fail_code, details: behaviour.fail_message });
    return;
  }
  observed(behaviour.tag, 'completed');
  callback(null, {
    text: call.request.text,
    padding: Buffer.alloc(behaviour.response_padding || 0, 1),
    deadline_seen: deadlineSeen(call),
    received_padding: call.request.padding.length,
  });
}

async function count(call) {
  const behaviour = call.request.behaviour || {};
  const state = watchCancellation(call, behaviour.tag);
  await pause(behaviour.delay_ms, state);
  const padding = Buffer.alloc(behaviour.response_padding || 0, 1);
  for (let value = 1; value <= call.request.count; value++) {
    if (state.cancelled) return;
    call.write({ value, padding });
    await pause(call.request.interval_ms, state);
  }
  if (state.cancelled) return;
  if (behaviour.fail_code) {
    call.emit('error', { code: behaviour.fail_code, details: behaviour.fail_message });
    return;
  }
  observed(behaviour.tag, 'completed');
  call.end();
}

const server = new grpc.Server();
// Unmapped is left out on purpose: grpc-js answers it with UNIMPLEMENTED.
server.addService(InteropTest.service, { Echo: echo, Count: count });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`bind failed: ${err.message}\n`);
    process.exit(2);
  }
  process.stdout.write(`LISTENING ${port}\n`);
});

process.stdin.on('end', () => {
  server.forceShutdown();
  process.exit(0);
});
process.stdin.resume();
