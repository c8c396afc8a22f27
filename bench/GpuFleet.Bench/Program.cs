using GpuFleet.Bench;

return args.Length > 0 && args[0] == "engine"
    ? await EngineBenchmark.RunAsync(args[1..])
    : Usage();

static int Usage()
{
    Console.Error.WriteLine("""
        Usage: dotnet run --project bench/GpuFleet.Bench -c Release -- engine --model <small.gguf>
                 [--threads N] [--tokens N] [--prompt-tokens N] [--runs N] [--peer auto|skip] [--gpu-layers N]
        Make the model first: dotnet run --project src/Worker -c Release -- demo-model artifacts/small-qwen35.gguf --arch qwen35 --size small
        """);
    return 2;
}
