using GpuFleet.Contracts;

namespace GpuFleet.Worker;

/// <summary>Worker settings, bound from configuration section <c>Worker</c>.</summary>
internal sealed class WorkerOptions
{
    public const string SectionName = "Worker";

    /// <summary>The GGUF model this worker serves (required).</summary>
    public string? ModelPath { get; set; }

    /// <summary>Folder of the llama.cpp libraries; default <c>llama-native/</c> beside the worker.</summary>
    public string? NativeDirectory { get; set; }

    /// <summary>Layers offloaded to the GPU: 0 = CPU only, -1 = all.</summary>
    public int GpuLayers { get; set; }

    /// <summary>The worker's name in status, logs and routing headers.</summary>
    public string Name { get; set; } = Environment.MachineName;

    /// <summary>The model id clients send as <c>model</c>; default: the GGUF file name without extension.</summary>
    public string? ModelId { get; set; }

    /// <summary>Address both ports bind to; 127.0.0.1 by default, 0.0.0.0 in containers.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>HTTP/1.1 port of the OpenAI API, health and metrics (0 = any free port).</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>HTTP/2 (h2c) port of the gRPC services (0 = any free port).</summary>
    public int GrpcPort { get; set; } = 8081;

    /// <summary>How long in-flight requests may take to finish after SIGTERM before the worker exits anyway.</summary>
    public int DrainTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest accepted request body; larger ones get 413.</summary>
    public int MaxRequestBodyBytes { get; set; } = 16 << 20;

    /// <summary>
    /// Most messages in one chat request (default 10,000); more get a 400 before anything is rendered. A long
    /// coding-agent session is a few hundred tool calls (two messages each), so the default is far above real use,
    /// while it bounds the work one request can cause however small its messages (a 16 MB body holds 400,000).
    /// </summary>
    public int MaxMessages { get; set; } = 10_000;

    /// <summary>
    /// Thinking for requests that do not say (<c>chat_template_kwargs.enable_thinking</c>); null = the model's
    /// own default (Qwen3.5/3.6: on). Teams whose agents pay per token often switch it off.
    /// </summary>
    public bool? EnableThinking { get; set; }

    /// <summary>
    /// Serve with the zero-cost simulated engine instead of llama.cpp (<c>--simulate</c>; default false): the GGUF
    /// is loaded for its vocabulary only, so tokenization, chat rendering, context checks, admission and usage
    /// are real, but every answer is fixed text that no model generated. For measuring the gateway and the
    /// API without model cost; labelled everywhere (status <c>simulated</c>, <c>/metrics</c>, <c>/v1/models</c>
    /// <c>owned_by</c>, the <c>x-gpufleet-simulated</c> response header, a warning at start).
    /// </summary>
    public bool Simulate { get; set; }

    /// <summary>
    /// Simulated engine only (<c>--simulate-tokens</c>; default 16): tokens of each answer before its simulated
    /// end of generation, so an answer has min(max_tokens, this) tokens, or max_tokens with <c>ignore_eos</c>.
    /// </summary>
    public int SimulatedReplyTokens { get; set; } = 16;

    /// <summary>
    /// Simulated engine only (<c>--simulate-token-ms</c>; default 0): a pause before each token, which holds the
    /// request's slot like a real generation would (a timer, no CPU). 0 answers at once.
    /// </summary>
    public int SimulatedTokenDelayMilliseconds { get; set; }

    /// <summary>
    /// Serve with the real scheduler over a calibrated cost model instead of llama.cpp (<c>--simulate-profile</c>; default
    /// unset): slots, queue, admission, prefix reuse and snapshots are the real engine's, each decode takes the time the
    /// named profile gives for its batch (<c>rtx3090-qwen36-27b-q4km</c>, or <c>instant</c> for zero cost), and the
    /// answers are simulated text of <see cref="SimulatedReplyTokens"/> tokens. The GGUF is loaded for its vocabulary
    /// only. Labelled simulated everywhere, as <see cref="Simulate"/> is.
    /// </summary>
    public string? SimulateProfile { get; set; }

    /// <summary>
    /// Cost-model engine only (<c>--simulate-speedup</c>; default 1): modelled time runs this many times faster than
    /// real time, so a modelled 30 ms step takes 3 ms at 10. Every worker of a simulated fleet must use the same value.
    /// </summary>
    public double SimulatedSpeedup { get; set; } = 1;

    /// <summary>True when no model generates the answers (<see cref="Simulate"/> or <see cref="SimulateProfile"/>).</summary>
    public bool IsSimulated => Simulate || !string.IsNullOrEmpty(SimulateProfile);

    /// <summary>
    /// Redis of the worker registry (<c>--redis</c>; default unset = no registry), as <c>host:port</c> or a full
    /// StackExchange.Redis configuration string (<c>host:port,password=...,ssl=true</c>; never logged): every 2 s the worker
    /// writes its entry there so that gateways find it, and removes it when it drains (docs/gateway.md, "Worker sources").
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>
    /// The HTTP URL gateways reach this worker by, as written to the registry (<c>--advertise-url</c>); default
    /// <c>http://{Host}:{HttpPort}</c> with a wildcard host (0.0.0.0, ::) replaced by the machine's host name. The
    /// advertised gRPC URL is the same host with <see cref="GrpcPort"/>.
    /// </summary>
    public string? AdvertiseUrl { get; set; }

    /// <summary>The id served under <c>/v1/models</c>.</summary>
    public string EffectiveModelId => string.IsNullOrWhiteSpace(ModelId) ? Path.GetFileNameWithoutExtension(ModelPath ?? "model") : ModelId;

    /// <summary>Every problem with these settings, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(ModelPath))
        {
            errors.Add("Worker:ModelPath is required (the GGUF file to serve).");
        }
        else if (!File.Exists(ModelPath))
        {
            errors.Add($"Worker:ModelPath '{ModelPath}' does not exist.");
        }

        if (NativeDirectory is not null && !Directory.Exists(NativeDirectory))
        {
            errors.Add($"Worker:NativeDirectory '{NativeDirectory}' does not exist.");
        }

        if (GpuLayers < -1)
        {
            errors.Add($"Worker:GpuLayers must be -1 (all), 0 (CPU) or a layer count, not {GpuLayers}.");
        }

        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add("Worker:Name must not be empty.");
        }

        if (!System.Net.IPAddress.TryParse(Host, out _))
        {
            errors.Add($"Worker:Host must be an IP address to bind to, not '{Host}'.");
        }

        foreach (var (key, port) in new[] { ("Worker:HttpPort", HttpPort), ("Worker:GrpcPort", GrpcPort) })
        {
            if (port is < 0 or > 65535)
            {
                errors.Add($"{key} must be between 0 and 65535, not {port}.");
            }
        }

        if (HttpPort != 0 && HttpPort == GrpcPort)
        {
            errors.Add($"Worker:HttpPort and Worker:GrpcPort must differ (both {HttpPort}): HTTP/1.1 and h2c cannot share a port.");
        }

        if (DrainTimeoutSeconds is < 0 or > 3600)
        {
            errors.Add($"Worker:DrainTimeoutSeconds must be between 0 and 3600, not {DrainTimeoutSeconds}.");
        }

        if (MaxRequestBodyBytes < 1024)
        {
            errors.Add($"Worker:MaxRequestBodyBytes must be at least 1024, not {MaxRequestBodyBytes}.");
        }

        if (MaxMessages < 1)
        {
            errors.Add($"Worker:MaxMessages must be at least 1, not {MaxMessages}.");
        }

        if (SimulatedReplyTokens < 1)
        {
            errors.Add($"Worker:SimulatedReplyTokens must be at least 1, not {SimulatedReplyTokens}.");
        }

        if (SimulatedTokenDelayMilliseconds is < 0 or > 60_000)
        {
            errors.Add($"Worker:SimulatedTokenDelayMilliseconds must be between 0 and 60000, not {SimulatedTokenDelayMilliseconds}.");
        }

        if (SimulateProfile is not null && Engine.CostModel.CostModelProfiles.Find(SimulateProfile) is null)
        {
            errors.Add($"Worker:SimulateProfile must be one of {string.Join(", ", Engine.CostModel.CostModelProfiles.Names)}, not '{SimulateProfile}'.");
        }

        if (Simulate && SimulateProfile is not null)
        {
            errors.Add("Worker:Simulate and Worker:SimulateProfile exclude each other: --simulate is the zero-cost engine, --simulate-profile the cost model.");
        }

        if (!(SimulatedSpeedup is >= 0.01 and <= 10_000))
        {
            errors.Add($"Worker:SimulatedSpeedup must be between 0.01 and 10000, not {SimulatedSpeedup}.");
        }

        if (!string.IsNullOrWhiteSpace(Redis))
        {
            RedisSettings.Parse(Redis, RedisSettings.WorkerKey, errors);
        }

        if (AdvertiseUrl is not null && (!Uri.TryCreate(AdvertiseUrl, UriKind.Absolute, out var advertised) || advertised.Scheme is not ("http" or "https")))
        {
            errors.Add($"Worker:AdvertiseUrl must be an absolute http(s) URL, not '{AdvertiseUrl}'.");
        }

        if (!string.IsNullOrWhiteSpace(Redis) && (GrpcPort == 0 || (AdvertiseUrl is null && HttpPort == 0)))
        {
            errors.Add("Worker:Redis is set but a port is 0 (any free port), which cannot be advertised: give Worker:HttpPort and Worker:GrpcPort (and/or Worker:AdvertiseUrl).");
        }

        return errors;
    }
}
