#!/usr/bin/env node
// Benchmark peer for GpuFleet: runs the same multi-stream greedy decode workload as our C# engine,
// but through node-llama-cpp@3.22.1, which ships the very llama.cpp build (v0.5.0 libs) we bind to.
// A gap between the two numbers is therefore our scheduling/interop overhead, not a llama.cpp difference.
//
// Usage: node engine-peer.mjs --model <file.gguf> [--threads 2] [--tokens 64] [--prompt-tokens 64]
//                             [--streams 1,4,8] [--ctx-per-seq 1024] [--runs 3] [--flash-attention auto|on|off]
// stdout: exactly one JSON line with the results; everything else goes to stderr.

import path from "node:path";
import fs from "node:fs";
import crypto from "node:crypto";
import os from "node:os";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const PEER_VERSION = "3.22.1";
const BATCH_SIZE = 512;

// Fixed English text: the prompt must be reproducible by the C# side (same text, same tokenizer).
const BASE_TEXT =
    "The quick brown fox jumps over the lazy dog while the patient engineer measures how many tokens per second " +
    "a small language model can produce when several independent streams share one inference context. ";

function log(...args) {
    process.stderr.write(`[peer] ${args.join(" ")}\n`);
}

function parseCli() {
    const { values } = parseArgs({
        options: {
            model: { type: "string" },
            threads: { type: "string", default: "2" },
            tokens: { type: "string", default: "64" },
            "prompt-tokens": { type: "string", default: "64" },
            streams: { type: "string", default: "1,4,8" },
            "ctx-per-seq": { type: "string", default: "1024" },
            runs: { type: "string", default: "3" },
            "flash-attention": { type: "string", default: "auto" }
        },
        strict: true
    });
    const posInt = (name) => {
        const n = Number(values[name]);
        if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${values[name]}'`);
        return n;
    };
    if (!values.model) throw new Error("--model <file.gguf> is required");
    const modelPath = path.resolve(values.model);
    if (!fs.existsSync(modelPath)) throw new Error(`model not found: ${modelPath}`);
    const streams = values.streams.split(",").map((s) => {
        const n = Number(s.trim());
        if (!Number.isInteger(n) || n < 1) throw new Error(`bad --streams entry '${s}'`);
        return n;
    });
    const fa = { auto: "auto", on: true, off: false }[values["flash-attention"]];
    if (fa === undefined) throw new Error("--flash-attention must be auto, on or off");
    const opts = {
        modelPath,
        threads: posInt("threads"),
        tokens: posInt("tokens"),
        promptTokens: posInt("prompt-tokens"),
        streams,
        ctxPerSeq: posInt("ctx-per-seq"),
        runs: posInt("runs"),
        flashAttention: fa
    };
    if (opts.promptTokens + opts.tokens > opts.ctxPerSeq)
        throw new Error("--prompt-tokens + --tokens must fit in --ctx-per-seq (no context shift in this benchmark)");
    return opts;
}

// Exactly `n` token ids per stream. Streams differ only in a short suffix so every stream does identical
// work, yet no two prompts are identical (identical prompts would let a prefix-sharing engine skip work).
function buildPrompt(model, n, streamIndex) {
    const suffix = model.tokenize(` [stream ${streamIndex}]`);
    const need = Math.max(0, n - suffix.length);
    let base = [];
    for (let text = BASE_TEXT; base.length < need; text += BASE_TEXT) base = model.tokenize(text);
    const prompt = base.slice(0, need).concat(suffix).slice(-n);
    if (prompt.length !== n) throw new Error(`prompt has ${prompt.length} tokens, wanted ${n}`);
    return prompt;
}

function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const nowS = () => Number(process.hrtime.bigint()) / 1e9;

// One measured pass over all streams.
// Prefill = every prompt token except the last, evaluated without sampling (one concurrent call per sequence,
// which node-llama-cpp merges into shared llama_decode batches).
// Decode  = evaluate([lastPromptToken]) and keep sampling: each of the N steps feeds one token per sequence
// and yields one token, so N decode steps produce exactly N tokens; the last yielded token is never fed back,
// matching a server that stops after N tokens.
async function runOnce(model, sequences, prompts, nTokens, decodeCalls) {
    await Promise.all(sequences.map((seq) => seq.clearHistory()));
    decodeCalls.prefill = decodeCalls.decode = 0;
    decodeCalls.phase = "prefill";

    const t0 = nowS();
    await Promise.all(sequences.map((seq, i) =>
        prompts[i].length > 1 ? seq.evaluateWithoutGeneratingNewTokens(prompts[i].slice(0, -1)) : undefined));
    const t1 = nowS();
    decodeCalls.phase = "decode";

    let eogSeen = 0;
    let firstTokenAt = Infinity;
    const outputs = await Promise.all(sequences.map(async (seq, i) => {
        const out = [];
        // yieldEogToken: the generator would otherwise stop silently at <|im_end|> etc.; with it, the EOG token
        // is yielded and fed back like any other token, so every stream produces exactly nTokens.
        const it = seq.evaluate([prompts[i][prompts[i].length - 1]], { temperature: 0, yieldEogToken: true });
        for await (const token of it) {
            if (out.length === 0) firstTokenAt = Math.min(firstTokenAt, nowS());
            if (model.isEogToken(token)) eogSeen++;
            out.push(token);
            if (out.length >= nTokens) break; // `break` runs the generator's finally, which frees its sampler
        }
        return out;
    }));
    const t2 = nowS();

    outputs.forEach((out, i) => {
        if (out.length !== nTokens) throw new Error(`stream ${i} produced ${out.length} tokens, wanted ${nTokens}`);
    });
    return {
        prefillS: t1 - t0, decodeS: t2 - t1, totalS: t2 - t0, ttftS: firstTokenAt - t0, eogSeen, outputs,
        prefillCalls: decodeCalls.prefill, decodeCalls: decodeCalls.decode
    };
}

async function benchStreams(llama, model, opts, S) {
    // node-llama-cpp's contextSize is PER SEQUENCE: the native n_ctx becomes contextSize * sequences.
    const context = await model.createContext({
        sequences: S,
        contextSize: opts.ctxPerSeq,
        batchSize: BATCH_SIZE,
        // min == ideal pins the thread count; otherwise its thread splitter may hand out fewer.
        threads: { ideal: opts.threads, min: opts.threads },
        flashAttention: opts.flashAttention
    });
    try {
        // Hybrid/recurrent models (qwen35) make node-llama-cpp take state checkpoints every `interval` tokens;
        // a plain decode loop does no such state copies, so keep them out of the measurement.
        const sequences = Array.from({ length: S }, () => context.getSequence({ checkpoints: { interval: false } }));
        const prompts = sequences.map((_, i) => buildPrompt(model, opts.promptTokens, i));
        const decodeCalls = countDecodeCalls(context);

        // warm-up: first-touch allocations, graph reserve, JIT
        await runOnce(model, sequences, prompts, opts.tokens, decodeCalls);
        const runs = [];
        for (let r = 0; r < opts.runs; r++) runs.push(await runOnce(model, sequences, prompts, opts.tokens, decodeCalls));

        const prefillS = median(runs.map((r) => r.prefillS));
        const decodeS = median(runs.map((r) => r.decodeS));
        const totalS = median(runs.map((r) => r.totalS));
        const generated = S * opts.tokens;
        const last = runs[runs.length - 1];
        const result = {
            streams: S,
            tokens_per_stream: opts.tokens,
            prompt_tokens_per_stream: opts.promptTokens,
            decode_tok_s: round(generated / decodeS),
            total_tok_s: round(generated / totalS),
            prefill_tok_s: opts.promptTokens > 1 ? round(S * (opts.promptTokens - 1) / prefillS) : null,
            prefill_s: round(prefillS, 6),
            decode_s: round(decodeS, 6),
            total_s: round(totalS, 6),
            ttft_s: round(median(runs.map((r) => r.ttftS)), 6),
            runs_decode_s: runs.map((r) => round(r.decodeS, 6)),
            flash_attention: context.flashAttention,
            eog_tokens_generated: last.eogSeen,
            // llama_decode calls per run: decode ~= tokens_per_stream means all S streams shared every batch.
            llama_decode_calls: { prefill: last.prefillCalls, decode: last.decodeCalls },
            // Greedy output fingerprint for cross-checking against the C# engine on the same prompts. With random-weight
            // test models near-tied logits can flip when streams are grouped into batches differently, so treat a
            // mismatch as a hint rather than a failure.
            stream0_head: last.outputs[0].slice(0, 8),
            outputs_sha256: crypto.createHash("sha256").update(JSON.stringify(last.outputs)).digest("hex").slice(0, 16)
        };
        log(`S=${S}: decode ${result.decode_tok_s} tok/s (${result.decode_s}s), prefill ${result.prefill_s}s, ` +
            `total ${result.total_s}s, runs ${JSON.stringify(result.runs_decode_s)}`);
        return result;
    } finally {
        await context.dispose();
    }
}

// Counts native llama_decode calls by wrapping node-llama-cpp's internal addon context (private API, 3.22.1).
// It is the only way to prove the S concurrent streams really were merged into shared batches.
function countDecodeCalls(context) {
    const counter = { phase: "prefill", prefill: 0, decode: 0 };
    const ctx = context._ctx;
    if (typeof ctx?.decodeBatch !== "function") {
        log("warning: cannot count llama_decode calls (node-llama-cpp internals changed)");
        counter.prefill = counter.decode = null;
        return counter;
    }
    const original = ctx.decodeBatch.bind(ctx);
    // The addon's methods are non-writable prototype properties, so shadow it on the instance instead.
    Object.defineProperty(ctx, "decodeBatch", {
        configurable: true,
        value: (...args) => {
            counter[counter.phase]++;
            return original(...args);
        }
    });
    return counter;
}

function round(x, digits = 2) {
    const f = 10 ** digits;
    return Math.round(x * f) / f;
}

async function main() {
    const opts = parseCli();
    const cpus = os.availableParallelism();
    // ggml's CPU threads spin at barriers; node-llama-cpp runs llama_decode on a libuv worker while the JS
    // thread, sampling workers and V8 helpers also want a core. With threads >= cores one preempted ggml thread
    // stalls the others for a whole scheduler slice (measured: 2 threads on 2 vCPUs, ~12 ms/step vs ~0.3 ms).
    if (opts.threads >= cpus)
        log(`warning: --threads ${opts.threads} >= ${cpus} CPUs; decode timings will be dominated by barrier stalls`);
    const llama = await getLlama({
        gpu: false,
        build: "never",        // use the prebuilt @node-llama-cpp/linux-x64 binaries; never compile
        skipDownload: true,    // never fetch llama.cpp sources
        usePrebuiltBinaries: true,
        maxThreads: 0,         // 0 = no global cap, so the per-context thread count is taken as-is
        logLevel: LlamaLogLevel.error,
        logger: (level, message) => process.stderr.write(`[llama ${level}] ${message}\n`),
        progressLogs: false
    });
    log(`llama.cpp ${llama.llamaCppRelease.release} (${llama.buildType}), cpuMathCores=${llama.cpuMathCores}`);

    const model = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: 0 });
    log(`model ${path.basename(opts.modelPath)}: arch ${model.fileInfo.metadata.general?.architecture}, ` +
        `hybrid=${model.fileInsights.isHybrid}, vocab ${model.vocabularyType}, type ${model.typeDescription}`);

    const results = [];
    try {
        for (const S of opts.streams) results.push(await benchStreams(llama, model, opts, S));
    } finally {
        await model.dispose();
        await llama.dispose();
    }

    process.stdout.write(JSON.stringify({
        peer: "node-llama-cpp",
        version: PEER_VERSION,
        llama_cpp_release: llama.llamaCppRelease.release,
        model: path.basename(opts.modelPath),
        threads: opts.threads,
        cpus,
        ctx_per_seq: opts.ctxPerSeq,
        batch_size: BATCH_SIZE,
        runs: opts.runs,
        results
    }) + "\n");
}

main().catch((err) => {
    log(`error: ${err?.stack ?? err}`);
    process.exit(1);
});
