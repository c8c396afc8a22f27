using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.Models;

/// <summary>What to build: architecture, size, quantization and the seed of the random weights.</summary>
public sealed record DemoModelOptions(string OutputPath, DemoArchitecture Architecture, DemoModelSize Size)
{
    /// <summary>Weight format of the saved file; null = F16 for tiny, Q8_0 for small (like real deployments).</summary>
    public DemoQuantization? Quantization { get; init; }

    public int Seed { get; init; } = 42;

    /// <summary>The real Qwen3.5 tokenizer and chat template; null = the small byte-level demo tokenizer (fast unit tests only).</summary>
    public QwenTokenizerFiles? Tokenizer { get; init; }
}

public enum DemoQuantization
{
    F16,
    Q8_0,
    Q4_K_M,
}

/// <summary>The file written and what llama.cpp reports for it after reloading.</summary>
public sealed record DemoModelInfo(string Path, long FileBytes, string Architecture, long Parameters, string Description, TimeSpan Elapsed);

/// <summary>
/// Writes a random-weight GGUF of a real llama.cpp architecture purely through llama.cpp's API
/// (gguf metadata -> llama_model_init_from_user -> llama_model_save_to_file), then re-adds the chat
/// template that the saver drops and optionally quantizes, as the probe recipe established.
/// </summary>
public static unsafe class DemoModelBuilder
{
    public static DemoModelInfo Build(DemoModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var stopwatch = Stopwatch.StartNew();
        var output = Path.GetFullPath(options.OutputPath);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var quantization = options.Quantization ?? (options.Size == DemoModelSize.Tiny ? DemoQuantization.F16 : DemoQuantization.Q8_0);
        var rawPath = output + ".raw.tmp";
        var templatedPath = output + ".tmpl.tmp";
        try
        {
            DemoModelSpec spec;
            using (var gguf = new GgufWriter())
            {
                gguf.SetString("general.architecture", options.Architecture == DemoArchitecture.Qwen3 ? "qwen3" : "qwen35");
                gguf.SetString("general.name", $"gpufleet-demo-{(options.Architecture == DemoArchitecture.Qwen3 ? "qwen3" : "qwen35")}-{options.Size.ToString().ToLowerInvariant()}");
                var vocabulary = options.Tokenizer?.Write(gguf) ?? DemoTokenizer.Write(gguf);
                spec = DemoModelSpec.Create(options.Architecture, options.Size, vocabulary);
                foreach (var (key, value) in spec.Hyperparameters)
                {
                    var fullKey = spec.ArchitectureName + "." + key;
                    switch (value)
                    {
                        case uint u: gguf.SetUInt32(fullKey, u); break;
                        case float f: gguf.SetFloat32(fullKey, f); break;
                        case int[] a: gguf.SetInt32Array(fullKey, a); break;
                        default: throw new InvalidOperationException($"Unsupported hyper-parameter type for {key}.");
                    }
                }

                gguf.DeclareTensors(spec.Tensors.Select(t => (t.Name, t.Shape, t.Type)));

                var filler = new RandomTensorFiller(options.Seed, 1.0f / MathF.Sqrt(spec.Embedding));
                var fillerHandle = GCHandle.Alloc(filler);
                try
                {
                    var parameters = LlamaNative.ModelDefaultParams();
                    parameters.NGpuLayers = 0;
                    using var model = new SafeLlamaModelHandle(LlamaNative.ModelInitFromUser(
                        gguf.Handle.DangerousGetHandle(), &FillTensor, GCHandle.ToIntPtr(fillerHandle), parameters));
                    filler.ThrowIfFailed();
                    if (model.IsInvalid)
                    {
                        throw new LlamaNativeException($"llama_model_init_from_user failed for {spec.ArchitectureName}; see the log.");
                    }

                    if (filler.TensorsFilled != spec.Tensors.Count)
                    {
                        throw new LlamaNativeException(
                            $"llama.cpp created {filler.TensorsFilled} tensors but {spec.Tensors.Count} were declared for {spec.ArchitectureName}.");
                    }

                    LlamaNative.ModelSaveToFile(model.DangerousGetHandle(), rawPath);
                }
                finally
                {
                    fillerHandle.Free();
                }
            }

            // llama_model_save_to_file does not write tokenizer.chat_template (probe pitfall C).
            var afterTemplate = quantization == DemoQuantization.F16 ? output : templatedPath;
            RewriteWithChatTemplate(rawPath, afterTemplate, options.Tokenizer?.ChatTemplate() ?? DemoTokenizer.ChatTemplate);
            if (quantization != DemoQuantization.F16)
            {
                Quantize(afterTemplate, output, quantization);
            }

            using var reloaded = LlamaModel.Load(output);
            return new DemoModelInfo(output, new FileInfo(output).Length, reloaded.Architecture, reloaded.ParameterCount, reloaded.Description, stopwatch.Elapsed);
        }
        finally
        {
            File.Delete(rawPath);
            File.Delete(templatedPath);
        }
    }

    private static void RewriteWithChatTemplate(string input, string output, string chatTemplate)
    {
        // Writing the context opened from the file segfaults (its tensor infos have no data); copy into a
        // fresh context instead, iterating gguf's own tensor names (the ggml context holds an extra blob).
        nint dataContext = 0;
        var init = new GgufInitParams { NoAlloc = 0, Ctx = (nint)(&dataContext) };
        using var source = new SafeGgufContextHandle(GgmlNative.GgufInitFromFile(input, init));
        using var data = new SafeGgmlContextHandle(dataContext);
        if (source.IsInvalid || data.IsInvalid)
        {
            throw new LlamaNativeException($"gguf_init_from_file could not read '{input}'.");
        }

        using var target = new GgufWriter();
        GgmlNative.GgufSetKv(target.Handle.DangerousGetHandle(), source.DangerousGetHandle());
        var count = GgmlNative.GgufGetNTensors(source.DangerousGetHandle());
        for (long i = 0; i < count; i++)
        {
            var tensor = GgmlNative.GetTensor(data.DangerousGetHandle(), GgmlNative.GgufGetTensorName(source.DangerousGetHandle(), i));
            GgmlNative.GgufAddTensor(target.Handle.DangerousGetHandle(), tensor);
        }

        target.SetString("tokenizer.chat_template", chatTemplate);
        if (!GgmlNative.GgufWriteToFile(target.Handle.DangerousGetHandle(), output, false))
        {
            throw new LlamaNativeException($"gguf_write_to_file failed for '{output}'.");
        }
    }

    private static void Quantize(string input, string output, DemoQuantization quantization)
    {
        var parameters = LlamaNative.ModelQuantizeDefaultParams();
        parameters.NThread = Environment.ProcessorCount;
        parameters.FType = (int)(quantization == DemoQuantization.Q4_K_M ? LlamaFileType.MostlyQ4KM : LlamaFileType.MostlyQ8_0);
        var rc = LlamaNative.ModelQuantize(input, output, &parameters);
        if (rc != 0)
        {
            throw new LlamaNativeException($"llama_model_quantize to {quantization} failed with code {rc}; see the log.");
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void FillTensor(nint tensor, nint userData)
    {
        var filler = (RandomTensorFiller)GCHandle.FromIntPtr(userData).Target!;
        filler.Fill(tensor);
    }
}
