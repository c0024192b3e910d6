namespace SharpVisor.Emulator;

/// <summary>The outcome of one <see cref="X86Cpu.Run"/> call.</summary>
public readonly record struct CpuRunResult(CpuStopReason Reason, CpuException? Exception = null)
{
    public override string ToString() => Exception is null ? Reason.ToString() : $"{Reason}: {Exception.Message}";
}
