using System.Text;

namespace SharpVisor.Machine;

/// <summary>
/// How a vCPU's run ended: the reason, a one-line detail, and — for failures — the
/// registers and the instruction bytes at RIP, so a report can say what the guest was doing.
/// </summary>
public sealed record VcpuExit(int VcpuId, VcpuExitReason Reason, string Detail, VcpuState? State = null, byte[]? InstructionBytes = null)
{
    public string Format()
    {
        var text = new StringBuilder();
        text.Append($"vCPU {VcpuId}: {Reason}: {Detail}");
        if (State is not null)
        {
            text.Append('\n').Append(State.Format());
        }

        if (InstructionBytes is { Length: > 0 })
        {
            text.Append("\nCode at RIP: ").Append(Convert.ToHexString(InstructionBytes).ToLowerInvariant());
        }

        return text.ToString();
    }
}
