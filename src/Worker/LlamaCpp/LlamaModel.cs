using System.Text;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>A token matched by its text when special tokens are parsed.</summary>
public sealed record SpecialToken(int Id, string Text, bool IsControl);

/// <summary>A loaded GGUF model: weights, vocabulary and metadata. Thread-safe for reading.</summary>
public sealed unsafe class LlamaModel : IDisposable
{
    private readonly nint _vocab;

    private LlamaModel(SafeLlamaModelHandle handle, string path, bool vocabularyOnly)
    {
        Handle = handle;
        Path = path;
        VocabularyOnly = vocabularyOnly;
        var model = handle.DangerousGetHandle();
        _vocab = LlamaNative.ModelGetVocab(model);
        VocabularySize = LlamaNative.VocabNTokens(_vocab);
        IsHybrid = LlamaNative.ModelIsHybrid(model);
        IsRecurrent = LlamaNative.ModelIsRecurrent(model);
        TrainingContextLength = LlamaNative.ModelNCtxTrain(model);
        ParameterCount = (long)LlamaNative.ModelNParams(model);
        SizeBytes = (long)LlamaNative.ModelSize(model);
        Architecture = GetMetadata("general.architecture") ?? "unknown";
        Name = GetMetadata("general.name") ?? System.IO.Path.GetFileNameWithoutExtension(path);
        var template = LlamaNative.ModelChatTemplate(model, null);
        ChatTemplate = template is null ? null : LlamaBackend.Utf8(template);
        SpecialTokens = FindSpecialTokens();
        var buffer = stackalloc byte[256];
        var n = LlamaNative.ModelDesc(model, buffer, 256);
        Description = n > 0 ? Encoding.UTF8.GetString(buffer, Math.Min(n, 255)) : Architecture;
    }

    internal SafeLlamaModelHandle Handle { get; }

    internal nint Vocabulary => _vocab;

    public string Path { get; }

    /// <summary>llama.cpp architecture name, e.g. <c>qwen3</c> or <c>qwen35</c>.</summary>
    public string Architecture { get; }

    public string Name { get; }

    public string Description { get; }

    public string? ChatTemplate { get; }

    public int VocabularySize { get; }

    /// <summary>Recurrent layers present (e.g. qwen35's Gated DeltaNet): a sequence's tail cannot be trimmed.</summary>
    public bool IsHybrid { get; }

    public bool IsRecurrent { get; }

    public int TrainingContextLength { get; }

    /// <summary>Layers asked to be offloaded to the GPU at load (-1 = all); 0 = the model (and its KV cache) live in host RAM.</summary>
    public int GpuLayers { get; private init; }

    public long ParameterCount { get; }

    public long SizeBytes { get; }

    /// <summary>Loaded with llama.cpp's <c>vocab_only</c>: tokenizer and metadata, no weights, so no context can decode with it.</summary>
    public bool VocabularyOnly { get; }

    /// <summary>
    /// Tokens that tokenization with special parsing matches by their text: control tokens (e.g.
    /// <c>&lt;|im_start|&gt;</c>) and user-defined ones (e.g. <c>&lt;think&gt;</c>), longest text first.
    /// </summary>
    public IReadOnlyList<SpecialToken> SpecialTokens { get; }

    /// <summary>
    /// Loads a GGUF file; <paramref name="gpuLayers"/> &lt; 0 offloads every layer when a GPU backend is present.
    /// With <paramref name="vocabularyOnly"/> only the vocabulary and metadata are read (no tensor memory).
    /// </summary>
    public static LlamaModel Load(string path, int gpuLayers = 0, bool vocabularyOnly = false)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        }

        var parameters = LlamaNative.ModelDefaultParams();
        parameters.NGpuLayers = gpuLayers;
        parameters.VocabOnly = vocabularyOnly ? (byte)1 : (byte)0;
        var handle = new SafeLlamaModelHandle(LlamaNative.ModelLoadFromFile(path, parameters));
        if (handle.IsInvalid)
        {
            throw new LlamaNativeException($"llama.cpp could not load '{path}' (not a GGUF of a supported architecture; see the log).");
        }

        return new LlamaModel(handle, System.IO.Path.GetFullPath(path), vocabularyOnly) { GpuLayers = gpuLayers };
    }

    /// <summary>A metadata value as a string, or null when the key is absent.</summary>
    public string? GetMetadata(string key)
    {
        var buffer = stackalloc byte[512];
        var n = LlamaNative.ModelMetaValStr(Handle.DangerousGetHandle(), key, buffer, 512);
        return n < 0 ? null : Encoding.UTF8.GetString(buffer, Math.Min(n, 511));
    }

    /// <summary>Tokenizes UTF-8 text; special tokens such as <c>&lt;|im_start|&gt;</c> are parsed when <paramref name="parseSpecial"/>.</summary>
    public int[] Tokenize(string text, bool addSpecial = false, bool parseSpecial = true)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var capacity = bytes.Length + 8;
        while (true)
        {
            var tokens = new int[capacity];
            int n;
            fixed (byte* p = bytes)
            fixed (int* t = tokens)
            {
                n = LlamaNative.Tokenize(_vocab, p, bytes.Length, t, capacity, addSpecial, parseSpecial);
            }

            if (n >= 0)
            {
                return tokens.AsSpan(0, n).ToArray();
            }

            if (n == int.MinValue)
            {
                throw new ArgumentException("The text is too long to tokenize.", nameof(text));
            }

            capacity = -n;
        }
    }

    /// <summary>The raw bytes of one token (may be part of a multi-byte UTF-8 character).</summary>
    public int TokenToPiece(int token, Span<byte> destination, bool renderSpecial = true)
    {
        fixed (byte* p = destination)
        {
            return LlamaNative.TokenToPiece(_vocab, token, p, destination.Length, 0, renderSpecial);
        }
    }

    /// <summary>The text of a token sequence (for tests and diagnostics; streaming uses <see cref="TokenToPiece"/>).</summary>
    public string Detokenize(ReadOnlySpan<int> tokens, bool renderSpecial = true)
    {
        var bytes = new List<byte>();
        Span<byte> buffer = stackalloc byte[256];
        foreach (var token in tokens)
        {
            var n = TokenToPiece(token, buffer, renderSpecial);
            for (var i = 0; i < n; i++)
            {
                bytes.Add(buffer[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>True for end-of-generation tokens (e.g. <c>&lt;|im_end|&gt;</c>, <c>&lt;|endoftext|&gt;</c>).</summary>
    public bool IsEndOfGeneration(int token) => LlamaNative.VocabIsEog(_vocab, token);

    public bool IsControl(int token) => LlamaNative.VocabIsControl(_vocab, token);

    public void Dispose() => Handle.Dispose();

    private List<SpecialToken> FindSpecialTokens()
    {
        const int Control = 1 << 3;
        const int UserDefined = 1 << 4;
        var specials = new List<SpecialToken>();
        for (var token = 0; token < VocabularySize; token++)
        {
            var attributes = LlamaNative.VocabGetAttr(_vocab, token);
            if ((attributes & (Control | UserDefined)) != 0 && LlamaBackend.Utf8(LlamaNative.VocabGetText(_vocab, token)) is { Length: > 0 } text)
            {
                specials.Add(new SpecialToken(token, text, (attributes & Control) != 0));
            }
        }

        return [.. specials.OrderByDescending(s => s.Text.Length)];
    }
}
