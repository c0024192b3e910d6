namespace SharpVisor.Emulator;

/// <summary>x87 state (filled in by the x87 stage).</summary>
public sealed partial class X86Cpu
{
    private void InitializeX87()
    {
    }

    private void ResetX87()
    {
    }
}
