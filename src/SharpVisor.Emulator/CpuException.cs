namespace SharpVisor.Emulator;

/// <summary>
/// A guest exception raised by the instruction semantics: the vector, the error code
/// (when the vector pushes one) and, for #PF, the faulting linear address (CR2).
/// The run loop stops with it; the platform later delivers it through the IDT.
/// Software interrupts (INT n, INT3, INTO) use the same object with <see cref="IsSoftwareInterrupt"/>.
/// Guest faults are frequent (every demand-paged #PF of a Linux guest): the message is formatted
/// only when someone reads it, not each time the exception is raised.
/// </summary>
public sealed class CpuException : Exception
{
    public CpuException(ExceptionVector vector, uint? errorCode = null, ulong faultAddress = 0)
    {
        Vector = (byte)vector;
        ErrorCode = errorCode;
        FaultAddress = faultAddress;
    }

    private CpuException(byte vector, bool software, int instructionLength)
    {
        Vector = vector;
        IsSoftwareInterrupt = software;
        InstructionLength = instructionLength;
    }

    /// <summary>The interrupt vector (0-31 for exceptions, any for INT n).</summary>
    public byte Vector { get; }

    public uint? ErrorCode { get; }

    /// <summary>The linear address that faulted (#PF only).</summary>
    public ulong FaultAddress { get; }

    /// <summary>INT n / INT3 / INTO: a trap, RIP already points after the instruction.</summary>
    public bool IsSoftwareInterrupt { get; }

    /// <summary>Length of the INT instruction (RIP - length is its address, where a failed gate check faults).</summary>
    public int InstructionLength { get; }

    /// <summary>"#PF(0x2) at 0x1000", "INT 0x80": formatted on demand.</summary>
    public override string Message => Describe(Vector, ErrorCode, FaultAddress, IsSoftwareInterrupt);

    public static CpuException SoftwareInterrupt(byte vector, int instructionLength) => new(vector, true, instructionLength);

    private static string Describe(byte vector, uint? errorCode, ulong address, bool software)
    {
        string name = software ? $"INT 0x{vector:x2}" : ((ExceptionVector)vector) switch
        {
            ExceptionVector.DivideError => "#DE",
            ExceptionVector.Debug => "#DB",
            ExceptionVector.Breakpoint => "#BP",
            ExceptionVector.Overflow => "#OF",
            ExceptionVector.BoundRange => "#BR",
            ExceptionVector.InvalidOpcode => "#UD",
            ExceptionVector.DeviceNotAvailable => "#NM",
            ExceptionVector.DoubleFault => "#DF",
            ExceptionVector.InvalidTss => "#TS",
            ExceptionVector.SegmentNotPresent => "#NP",
            ExceptionVector.StackSegment => "#SS",
            ExceptionVector.GeneralProtection => "#GP",
            ExceptionVector.PageFault => "#PF",
            ExceptionVector.FloatingPoint => "#MF",
            ExceptionVector.AlignmentCheck => "#AC",
            ExceptionVector.MachineCheck => "#MC",
            ExceptionVector.SimdFloatingPoint => "#XM",
            _ => $"vector {vector}",
        };
        string code = errorCode is uint c ? $"(0x{c:x})" : "";
        string addr = vector == (byte)ExceptionVector.PageFault && !software ? $" at 0x{address:x}" : "";
        return name + code + addr;
    }
}
