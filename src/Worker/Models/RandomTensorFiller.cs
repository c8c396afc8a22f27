using System.Runtime.InteropServices;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.Models;

/// <summary>
/// Fills the tensors llama.cpp creates for a user-built model with seeded pseudo-random values: a pool of
/// normal samples tiled from a per-tensor offset, so a 150 M parameter model fills in seconds and the same
/// seed always gives the same file. Norm weights sit around 1 and ssm_a is negative, as trained models have.
/// </summary>
internal sealed unsafe class RandomTensorFiller
{
    private const int PoolSize = 1 << 20;
    private readonly float[] _poolF32 = new float[PoolSize];
    private readonly Half[] _poolF16 = new Half[PoolSize];
    private Exception? _failure;

    public RandomTensorFiller(int seed, float standardDeviation)
    {
        var random = new Random(seed);
        for (var i = 0; i < PoolSize; i++)
        {
            // Box-Muller: one normal sample per pair of uniforms.
            var u1 = 1.0 - random.NextDouble();
            var u2 = random.NextDouble();
            var normal = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
            _poolF32[i] = (float)normal * standardDeviation;
            _poolF16[i] = (Half)_poolF32[i];
        }
    }

    public int TensorsFilled { get; private set; }

    public void ThrowIfFailed()
    {
        if (_failure is not null)
        {
            throw new LlamaNativeException("Filling the demo model's tensors failed.", _failure);
        }
    }

    /// <summary>Called from native code once per tensor; records failures instead of throwing across the boundary.</summary>
    public void Fill(nint tensor)
    {
        if (_failure is not null)
        {
            return;
        }

        try
        {
            var name = LlamaBackend.Utf8(GgmlNative.GetName(tensor));
            var type = (GgmlType)Marshal.ReadInt32(tensor); // ggml_tensor.type is the first field
            var elements = GgmlNative.NElements(tensor);
            var offset = (int)(StableHash(name) % PoolSize);
            switch (type)
            {
                case GgmlType.F32:
                    FillF32(tensor, name, elements, offset);
                    break;
                case GgmlType.F16:
                    FillTiled(tensor, _poolF16.AsSpan(), sizeof(Half), elements, offset);
                    break;
                default:
                    throw new InvalidOperationException($"Tensor {name} has unsupported type {type}.");
            }

            TensorsFilled++;
        }
#pragma warning disable CA1031 // Must not unwind into llama.cpp; rethrown by ThrowIfFailed on the managed side.
        catch (Exception ex)
        {
            _failure = ex;
        }
#pragma warning restore CA1031
    }

    private void FillF32(nint tensor, string name, long elements, int offset)
    {
        var values = new float[elements];
        for (long i = 0; i < elements; i++)
        {
            var v = _poolF32[(offset + i) % PoolSize];
            values[i] = name.Contains("ssm_a", StringComparison.Ordinal) ? -MathF.Abs(v) - 0.05f
                : name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1.0f + v
                : v;
        }

        fixed (float* p = values)
        {
            GgmlNative.BackendTensorSet(tensor, p, 0, (nuint)(elements * sizeof(float)));
        }
    }

    private static void FillTiled<T>(nint tensor, Span<T> pool, int elementSize, long elements, int offset)
        where T : unmanaged
    {
        long written = 0;
        var start = offset;
        while (written < elements)
        {
            var count = (int)Math.Min(PoolSize - start, elements - written);
            fixed (T* p = pool.Slice(start, count))
            {
                GgmlNative.BackendTensorSet(tensor, p, (nuint)(written * elementSize), (nuint)(count * elementSize));
            }

            written += count;
            start = 0;
        }
    }

    // FNV-1a: a stable per-name offset (string.GetHashCode is randomised per process).
    private static uint StableHash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
