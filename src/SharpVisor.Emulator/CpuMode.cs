namespace SharpVisor.Emulator;

/// <summary>The execution mode, which fixes default operand/address sizes and how segments work.</summary>
public enum CpuMode : byte
{
    Real = 0,
    Virtual8086 = 1,
    Protected16 = 2,
    Protected32 = 3,
    Compatibility16 = 4,
    Compatibility32 = 5,
    Long64 = 6,
}
