using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>
/// The test service on Grpc.AspNetCore (Unmapped is left to the generated base, which answers UNIMPLEMENTED); records
/// how each tagged call ended, as its handler saw it.
/// </summary>
internal sealed class InteropTestService : InteropTest.InteropTestBase
{
    /// <summary>What a handler throws for throw_unexpected; it must never reach a client.</summary>
    public const string SecretExceptionText = "secret internal detail 0xDEADBEEF";

    private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _outcomes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _started = new(StringComparer.Ordinal);

    /// <summary>How the handler of the call tagged <paramref name="tag"/> ended: completed, failed, cancelled (client) or deadline.</summary>
    public Task<string> OutcomeAsync(string tag) => Signal(_outcomes, tag).Task.WithTimeout();

    /// <summary>Completes once the handler of the call tagged <paramref name="tag"/> runs (so a test can cancel a call that surely arrived).</summary>
    public Task StartedAsync(string tag) => Signal(_started, tag).Task.WithTimeout();

    /// <summary>Whether the handler of the call tagged <paramref name="tag"/> ever ran.</summary>
    public bool HasStarted(string tag) => Signal(_started, tag).Task.IsCompleted;

    public override async Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context)
    {
        var behaviour = request.Behaviour ?? new Behaviour();
        return await ObserveAsync(behaviour, context, async () =>
        {
            await PauseAsync(behaviour.DelayMs, context).ConfigureAwait(false);
            FailIfAsked(behaviour);
            return new EchoResponse
            {
                Text = request.Text,
                Padding = Padding(behaviour),
                DeadlineSeen = context.GetHttpContext().Request.Headers["grpc-timeout"].ToString(),
                ReceivedPadding = (uint)request.Padding.Length,
            };
        }).ConfigureAwait(false);
    }

    public override async Task Count(CountRequest request, IServerStreamWriter<CountResponse> responseStream, ServerCallContext context)
    {
        var behaviour = request.Behaviour ?? new Behaviour();
        await ObserveAsync(behaviour, context, async () =>
        {
            await PauseAsync(behaviour.DelayMs, context).ConfigureAwait(false);
            var padding = Padding(behaviour);
            for (var value = 1u; value <= request.Count; value++)
            {
                await responseStream.WriteAsync(new CountResponse { Value = value, Padding = padding }, context.CancellationToken).ConfigureAwait(false);
                await PauseAsync(request.IntervalMs, context).ConfigureAwait(false);
            }

            FailIfAsked(behaviour);
            return true;
        }).ConfigureAwait(false);
    }

    private async Task<T> ObserveAsync<T>(Behaviour behaviour, ServerCallContext context, Func<Task<T>> body)
    {
        Record(_started, behaviour.Tag, "started");
        try
        {
            var result = await body().ConfigureAwait(false);
            Record(_outcomes, behaviour.Tag, "completed");
            return result;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            Record(_outcomes, behaviour.Tag, context.GetHttpContext().RequestAborted.IsCancellationRequested ? "cancelled" : "deadline");
            throw;
        }
        catch (RpcException)
        {
            Record(_outcomes, behaviour.Tag, "failed");
            throw;
        }
    }

    private static Task PauseAsync(uint milliseconds, ServerCallContext context) =>
        milliseconds == 0 ? Task.CompletedTask : Task.Delay(TimeSpan.FromMilliseconds(milliseconds), context.CancellationToken);

    private static void FailIfAsked(Behaviour behaviour)
    {
        if (behaviour.ThrowUnexpected)
        {
            throw new InvalidOperationException(SecretExceptionText);
        }

        if (behaviour.FailCode != 0)
        {
            throw new RpcException(new Status((StatusCode)behaviour.FailCode, behaviour.FailMessage));
        }
    }

    private static ByteString Padding(Behaviour behaviour) =>
        behaviour.ResponsePadding == 0 ? ByteString.Empty : ByteString.CopyFrom(new byte[behaviour.ResponsePadding]);

    private static void Record(ConcurrentDictionary<string, TaskCompletionSource<string>> signals, string tag, string value)
    {
        if (tag.Length > 0)
        {
            Signal(signals, tag).TrySetResult(value);
        }
    }

    private static TaskCompletionSource<string> Signal(ConcurrentDictionary<string, TaskCompletionSource<string>> signals, string tag) =>
        signals.GetOrAdd(tag, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
}
