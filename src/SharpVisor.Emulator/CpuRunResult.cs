namespace SharpVisor.Emulator;

/// <summary>The outcome of one <see cref="X86Cpu.Run"/> call; <paramref name="Detail"/> says why a triple fault happened.</summary>
public readonly record struct CpuRunResult(CpuStopReason Reason, CpuException? Exception = null, string? Detail = null)
{
    public override string ToString() =>
        Exception is not null ? $"{Reason}: {Exception.Message}" : Detail is not null ? $"{Reason}: {Detail}" : Reason.ToString();
}
