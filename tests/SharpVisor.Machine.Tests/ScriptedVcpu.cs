using SharpVisor.Machine;

namespace SharpVisor.Machine.Tests;

/// <summary>
/// A vCPU that "runs" by counting until kicked, or ends with a scripted exit: enough to
/// drive <see cref="VirtualMachineRunner"/> without an accelerator.
/// </summary>
internal sealed class ScriptedVcpu : IVcpu
{
    private readonly SemaphoreSlim _kicks = new(0);
    private readonly Func<int, VcpuExit?> _onRun;
    private int _runs;
    private long _progress;

    public ScriptedVcpu(int id, Func<int, VcpuExit?>? onRun = null)
    {
        Id = id;
        _onRun = onRun ?? (_ => null);
    }

    public int Id { get; }

    public ExitCounters Exits { get; } = new();

    public long Progress => Interlocked.Read(ref _progress);

    public VcpuState GetState() => new() { Rip = (ulong)Progress };

    public void SetState(VcpuState state)
    {
    }

    public void EnterWaitForStartup()
    {
    }

    public VcpuExit Run()
    {
        VcpuExit? scripted = _onRun(Interlocked.Increment(ref _runs));
        if (scripted is not null)
        {
            return scripted;
        }

        // "Execute" until a kick arrives, making observable progress meanwhile.
        while (!_kicks.Wait(1))
        {
            Interlocked.Increment(ref _progress);
        }

        return new VcpuExit(Id, VcpuExitReason.Stopped, "kicked");
    }

    public void Kick() => _kicks.Release();

    public void Dispose() => _kicks.Dispose();
}
