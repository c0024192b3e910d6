using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Families bound in later stages.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindMmx(in Instruction ins, ref Op op) => null;


}
