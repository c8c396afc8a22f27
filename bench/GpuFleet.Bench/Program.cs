using GpuFleet.Bench;
using GpuFleet.Bench.Gateway;
using GpuFleet.Bench.Peer;
using GpuFleet.Bench.Routing;
using GpuFleet.Bench.Soak;

return args.Length == 0 ? Usage() : args[0] switch
{
    "engine" => await EngineBenchmark.RunAsync(args[1..]),
    "gateway" => await GatewayBenchmark.RunAsync(args[1..]),
    "agent" => await AgentBenchmark.RunAsync(args[1..]),
    "routing" => await RoutingBenchmark.RunAsync(args[1..]),
    "soak" => await SoakBenchmark.RunAsync(args[1..]),
    "peer" => await PeerBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine($"""
        Usage: dotnet run --project bench/GpuFleet.Bench -c Release -- engine --model <small.gguf>
                 [--threads N] [--tokens N] [--prompt-tokens N] [--runs N] [--peer auto|skip] [--gpu-layers N]
               dotnet run --project bench/GpuFleet.Bench -c Release -- {GatewayBenchOptions.Usage}
                 (a SIMULATED worker called directly, through the gateway and through nginx; bench/setup.sh installs nginx)
               dotnet run --project bench/GpuFleet.Bench -c Release -- agent --model <run.sh's demo model> [--runs 3] [--threads N] [--ctx-size N]
                 (time to first token of a coding agent's requests on one worker: cold, shared system prompt, next turn)
               dotnet run --project bench/GpuFleet.Bench -c Release -- {RoutingBenchOptions.Usage}
                 (routing policies side by side: SIMULATED workers on the RTX 3090 cost model behind the real gateway)
               dotnet run --project bench/GpuFleet.Bench -c Release -- {SoakOptions.Usage}
                 (steady streaming load for a long time: failed requests and the memory drift of every process)
               dotnet run --project bench/GpuFleet.Bench -c Release -- {PeerOptions.Usage}
                 (the worker against llama.cpp's own llama-server, side by side; build it first: bench/peer/build-llama-server.sh)
        Make the model first: dotnet run --project src/Worker -c Release -- demo-model artifacts/small-qwen35.gguf --arch qwen35 --size small
        """);
    return 2;
}
