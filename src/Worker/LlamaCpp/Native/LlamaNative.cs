using System.Runtime.InteropServices;

namespace GpuFleet.Worker.LlamaCpp.Native;

/// <summary>
/// The llama.cpp C API (include/llama.h, release v0.5.0) as used by the worker. Only blittable
/// signatures: pointers are <c>nint</c> or typed pointers, C bools are marshalled as one byte.
/// The library name is resolved to the fetched file by <see cref="NativeLibraryResolver"/>.
/// </summary>
internal static unsafe partial class LlamaNative
{
    public const string Library = "llama";

    // ---- backend, logging
    [LibraryImport(Library, EntryPoint = "llama_backend_init")]
    public static partial void BackendInit();

    [LibraryImport(Library, EntryPoint = "llama_log_set")]
    public static partial void LogSet(delegate* unmanaged[Cdecl]<int, byte*, nint, void> callback, nint userData);

    [LibraryImport(Library, EntryPoint = "llama_print_system_info")]
    public static partial byte* PrintSystemInfo();

    [LibraryImport(Library, EntryPoint = "llama_max_parallel_sequences")]
    public static partial nuint MaxParallelSequences();

    // ---- default parameters
    [LibraryImport(Library, EntryPoint = "llama_model_default_params")]
    public static partial LlamaModelParams ModelDefaultParams();

    [LibraryImport(Library, EntryPoint = "llama_context_default_params")]
    public static partial LlamaContextParams ContextDefaultParams();

    [LibraryImport(Library, EntryPoint = "llama_sampler_chain_default_params")]
    public static partial LlamaSamplerChainParams SamplerChainDefaultParams();

    [LibraryImport(Library, EntryPoint = "llama_model_quantize_default_params")]
    public static partial LlamaModelQuantizeParams ModelQuantizeDefaultParams();

    // ---- model
    [LibraryImport(Library, EntryPoint = "llama_model_init_from_user")]
    public static partial nint ModelInitFromUser(
        nint ggufMetadata, delegate* unmanaged[Cdecl]<nint, nint, void> setTensorData, nint userData, LlamaModelParams modelParams);

    [LibraryImport(Library, EntryPoint = "llama_model_load_from_file", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint ModelLoadFromFile(string path, LlamaModelParams modelParams);

    [LibraryImport(Library, EntryPoint = "llama_model_save_to_file", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void ModelSaveToFile(nint model, string path);

    [LibraryImport(Library, EntryPoint = "llama_model_free")]
    public static partial void ModelFree(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_quantize", StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint ModelQuantize(string input, string output, LlamaModelQuantizeParams* quantizeParams);

    [LibraryImport(Library, EntryPoint = "llama_model_get_vocab")]
    public static partial nint ModelGetVocab(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_n_params")]
    public static partial ulong ModelNParams(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_size")]
    public static partial ulong ModelSize(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_desc")]
    public static partial int ModelDesc(nint model, byte* buffer, nuint bufferSize);

    [LibraryImport(Library, EntryPoint = "llama_model_n_ctx_train")]
    public static partial int ModelNCtxTrain(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_n_layer")]
    public static partial int ModelNLayer(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_n_embd")]
    public static partial int ModelNEmbd(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_is_hybrid")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool ModelIsHybrid(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_is_recurrent")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool ModelIsRecurrent(nint model);

    [LibraryImport(Library, EntryPoint = "llama_model_chat_template", StringMarshalling = StringMarshalling.Utf8)]
    public static partial byte* ModelChatTemplate(nint model, string? name);

    [LibraryImport(Library, EntryPoint = "llama_model_meta_val_str", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ModelMetaValStr(nint model, string key, byte* buffer, nuint bufferSize);

    // ---- vocabulary and tokenizer
    [LibraryImport(Library, EntryPoint = "llama_vocab_n_tokens")]
    public static partial int VocabNTokens(nint vocab);

    [LibraryImport(Library, EntryPoint = "llama_vocab_is_eog")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool VocabIsEog(nint vocab, int token);

    [LibraryImport(Library, EntryPoint = "llama_vocab_is_control")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool VocabIsControl(nint vocab, int token);

    [LibraryImport(Library, EntryPoint = "llama_vocab_get_attr")]
    public static partial int VocabGetAttr(nint vocab, int token);

    [LibraryImport(Library, EntryPoint = "llama_vocab_get_text")]
    public static partial byte* VocabGetText(nint vocab, int token);

    [LibraryImport(Library, EntryPoint = "llama_vocab_eos")]
    public static partial int VocabEos(nint vocab);

    [LibraryImport(Library, EntryPoint = "llama_vocab_bos")]
    public static partial int VocabBos(nint vocab);

    [LibraryImport(Library, EntryPoint = "llama_vocab_get_add_bos")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool VocabGetAddBos(nint vocab);

    [LibraryImport(Library, EntryPoint = "llama_tokenize")]
    public static partial int Tokenize(
        nint vocab, byte* text, int textLength, int* tokens, int maxTokens,
        [MarshalAs(UnmanagedType.U1)] bool addSpecial, [MarshalAs(UnmanagedType.U1)] bool parseSpecial);

    [LibraryImport(Library, EntryPoint = "llama_token_to_piece")]
    public static partial int TokenToPiece(
        nint vocab, int token, byte* buffer, int length, int lstrip, [MarshalAs(UnmanagedType.U1)] bool special);

    [LibraryImport(Library, EntryPoint = "llama_chat_apply_template")]
    public static partial int ChatApplyTemplate(
        byte* template, LlamaChatMessage* messages, nuint count, [MarshalAs(UnmanagedType.U1)] bool addAssistant,
        byte* buffer, int length);

    // ---- context
    [LibraryImport(Library, EntryPoint = "llama_init_from_model")]
    public static partial nint InitFromModel(nint model, LlamaContextParams contextParams);

    [LibraryImport(Library, EntryPoint = "llama_free")]
    public static partial void Free(nint context);

    /// <summary>Gives the context persistent ggml worker threads: one pool for single-token decodes, one for batches (may be the same).</summary>
    [LibraryImport(Library, EntryPoint = "llama_attach_threadpool")]
    public static partial void AttachThreadpool(nint context, nint threadpool, nint threadpoolBatch);

    [LibraryImport(Library, EntryPoint = "llama_n_ctx")]
    public static partial uint NCtx(nint context);

    [LibraryImport(Library, EntryPoint = "llama_n_ctx_seq")]
    public static partial uint NCtxSeq(nint context);

    [LibraryImport(Library, EntryPoint = "llama_n_batch")]
    public static partial uint NBatch(nint context);

    [LibraryImport(Library, EntryPoint = "llama_n_seq_max")]
    public static partial uint NSeqMax(nint context);

    [LibraryImport(Library, EntryPoint = "llama_get_memory")]
    public static partial nint GetMemory(nint context);

    [LibraryImport(Library, EntryPoint = "llama_decode")]
    public static partial int Decode(nint context, LlamaBatchNative batch);

    [LibraryImport(Library, EntryPoint = "llama_synchronize")]
    public static partial void Synchronize(nint context);

    [LibraryImport(Library, EntryPoint = "llama_get_logits_ith")]
    public static partial float* GetLogitsIth(nint context, int index);

    // ---- batch
    [LibraryImport(Library, EntryPoint = "llama_batch_init")]
    public static partial LlamaBatchNative BatchInit(int tokenCapacity, int embd, int seqIdCapacity);

    [LibraryImport(Library, EntryPoint = "llama_batch_free")]
    public static partial void BatchFree(LlamaBatchNative batch);

    // ---- memory (KV cache and recurrent state), per sequence
    [LibraryImport(Library, EntryPoint = "llama_memory_clear")]
    public static partial void MemoryClear(nint memory, [MarshalAs(UnmanagedType.U1)] bool clearData);

    [LibraryImport(Library, EntryPoint = "llama_memory_seq_rm")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool MemorySeqRm(nint memory, int seqId, int p0, int p1);

    [LibraryImport(Library, EntryPoint = "llama_memory_seq_cp")]
    public static partial void MemorySeqCp(nint memory, int srcSeqId, int dstSeqId, int p0, int p1);

    [LibraryImport(Library, EntryPoint = "llama_memory_seq_pos_min")]
    public static partial int MemorySeqPosMin(nint memory, int seqId);

    [LibraryImport(Library, EntryPoint = "llama_memory_seq_pos_max")]
    public static partial int MemorySeqPosMax(nint memory, int seqId);

    [LibraryImport(Library, EntryPoint = "llama_state_seq_get_size")]
    public static partial nuint StateSeqGetSize(nint context, int seqId);

    [LibraryImport(Library, EntryPoint = "llama_state_seq_get_data")]
    public static partial nuint StateSeqGetData(nint context, byte* destination, nuint size, int seqId);

    [LibraryImport(Library, EntryPoint = "llama_state_seq_set_data")]
    public static partial nuint StateSeqSetData(nint context, byte* source, nuint size, int destinationSeqId);

    // ---- sampling
    [LibraryImport(Library, EntryPoint = "llama_sampler_chain_init")]
    public static partial nint SamplerChainInit(LlamaSamplerChainParams chainParams);

    [LibraryImport(Library, EntryPoint = "llama_sampler_chain_add")]
    public static partial void SamplerChainAdd(nint chain, nint sampler);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_greedy")]
    public static partial nint SamplerInitGreedy();

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_dist")]
    public static partial nint SamplerInitDist(uint seed);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_top_k")]
    public static partial nint SamplerInitTopK(int k);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_top_p")]
    public static partial nint SamplerInitTopP(float p, nuint minKeep);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_min_p")]
    public static partial nint SamplerInitMinP(float p, nuint minKeep);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_temp")]
    public static partial nint SamplerInitTemp(float temperature);

    // The vocabulary size comes first in this release (backend sampling sizes its tensors with it); without
    // it penalty_last_n was read from a stale register and the penalties came and went at random.
    [LibraryImport(Library, EntryPoint = "llama_sampler_init_penalties")]
    public static partial nint SamplerInitPenalties(int vocabularySize, int lastN, float repeat, float frequency, float presence);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_grammar", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint SamplerInitGrammar(nint vocab, string grammar, string root);

    [LibraryImport(Library, EntryPoint = "llama_sampler_apply")]
    public static partial void SamplerApply(nint sampler, LlamaTokenDataArray* candidates);

    [LibraryImport(Library, EntryPoint = "llama_sampler_accept")]
    public static partial void SamplerAccept(nint sampler, int token);

    [LibraryImport(Library, EntryPoint = "llama_sampler_free")]
    public static partial void SamplerFree(nint sampler);
}
