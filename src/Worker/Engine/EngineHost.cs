using GpuFleet.Worker.Engine.CostModel;
using GpuFleet.Worker.Engine.Simulated;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// Owns the worker's llama.cpp lifetime: loads the libraries and the model at start, runs the engine (or,
/// with <see cref="WorkerOptions.Simulate"/>, the simulated one on the model's vocabulary only), and on
/// shutdown lets accepted requests finish within the host's shutdown timeout.
/// </summary>
internal sealed class EngineHost : IHostedService, IAsyncDisposable
{
    // Read in StartAsync, not here: the host builds its hosted services before it validates options, and
    // validation must report every problem at once instead of failing in this constructor.
    private readonly IOptions<WorkerOptions> _worker;
    private readonly IOptions<EngineOptions> _engineOptions;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger<EngineHost> _logger;
    private readonly TimeProvider _time;
    private LlamaModel? _model;
    private IInferenceEngine? _engine;

    public EngineHost(IOptions<WorkerOptions> worker, IOptions<EngineOptions> engine, ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(engine);
        _worker = worker;
        _engineOptions = engine;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<EngineHost>();
        _time = time;
    }

    /// <summary>The running engine; available once the host has started.</summary>
    public IInferenceEngine Engine => _engine ?? throw new InvalidOperationException("The engine has not started yet.");

    public LlamaBackendInfo? Backend { get; private set; }

    /// <summary>True once the model is loaded and the engine runs.</summary>
    public bool Ready => _engine is not null;

    /// <summary>How long loading the model and starting the engine took; null until it is done.</summary>
    public TimeSpan? ModelLoadTime { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var worker = _worker.Value;
        var started = _time.GetTimestamp();
        Backend = LlamaBackend.Initialize(worker.NativeDirectory, _loggerFactory);
        EngineHostLog.BackendLoaded(_logger, Backend.Directory, string.Join(", ", Backend.Backends),
            string.Join(", ", Backend.Devices.Select(d => $"{d.Name} ({d.Type}, {d.TotalBytes >> 20} MiB)")));
        if (worker.Simulate)
        {
            // No weights are read and no context is created: only the tokenizer and metadata are needed.
            _model = LlamaModel.Load(worker.ModelPath!, vocabularyOnly: true);
            EngineHostLog.ModelLoaded(_logger, _model.Name, _model.Architecture, _model.ParameterCount, _model.SizeBytes);
            _engine = SimulatedEngine.Start(_model, _engineOptions.Value,
                new SimulatedReply { Tokens = worker.SimulatedReplyTokens, TokenDelay = TimeSpan.FromMilliseconds(worker.SimulatedTokenDelayMilliseconds) },
                _loggerFactory.CreateLogger<SimulatedEngine>(), _time);
            ModelLoadTime = _time.GetElapsedTime(started);
            return;
        }

        if (CostModelProfiles.Find(worker.SimulateProfile) is { } profile)
        {
            // The real scheduler over a cost model: like --simulate, only the vocabulary is read.
            _model = LlamaModel.Load(worker.ModelPath!, vocabularyOnly: true);
            EngineHostLog.ModelLoaded(_logger, _model.Name, _model.Architecture, _model.ParameterCount, _model.SizeBytes);
            SimulatedEngineLog.CostModelStarted(_logger, profile.Name, worker.SimulatedSpeedup);
            _engine = await InferenceEngine.StartAsync(_model, new CostModelBackend(_model, profile, worker.SimulatedSpeedup, worker.SimulatedReplyTokens),
                _engineOptions.Value, _loggerFactory.CreateLogger<InferenceEngine>(), _time).WaitAsync(cancellationToken);
            return;
        }

        if (worker.GpuLayers != 0 && !Backend.HasGpu)
        {
            EngineHostLog.NoGpuForOffload(_logger, worker.GpuLayers);
        }

        _model = LlamaModel.Load(worker.ModelPath!, worker.GpuLayers);
        EngineHostLog.ModelLoaded(_logger, _model.Name, _model.Architecture, _model.ParameterCount, _model.SizeBytes);
        _engine = await InferenceEngine.StartAsync(_model, _engineOptions.Value, _loggerFactory.CreateLogger<InferenceEngine>(), _time)
            .WaitAsync(cancellationToken);
        ModelLoadTime = _time.GetElapsedTime(started);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_engine is not null)
        {
            await _engine.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_engine is not null)
        {
            await _engine.DisposeAsync();
        }

        _model?.Dispose();
    }
}
