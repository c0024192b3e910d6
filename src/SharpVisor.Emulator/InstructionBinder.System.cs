using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Binding of system instructions: port I/O, control registers, descriptor tables, MSRs.</summary>
internal unsafe partial struct InstructionBinder
{
    private bool? BindSystem(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.In:
            {
                op.Aux = (ushort)(ins.Op1Kind == OpKind.Register ? 1 : 0);
                op.Imm = ins.Op1Kind == OpKind.Register ? 0UL : ins.Immediate8;
                op.Handler = Sized(RegisterSize(ins.Op0Register), &IoHandlers.In<Size8>, &IoHandlers.In<Size16>, &IoHandlers.In<Size32>, null);
                return false;
            }

            case Mnemonic.Out:
            {
                op.Aux = (ushort)(ins.Op0Kind == OpKind.Register ? 1 : 0);
                op.Imm = ins.Op0Kind == OpKind.Register ? 0UL : ins.Immediate8;
                op.Handler = Sized(RegisterSize(ins.Op1Register), &IoHandlers.Out<Size8>, &IoHandlers.Out<Size16>, &IoHandlers.Out<Size32>, null);
                return false;
            }

            default:
                return null;
        }
    }
}
