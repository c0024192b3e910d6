namespace SharpVisor.Xen;

/// <summary>HVM parameter indices (xen/include/public/hvm/params.h) this hypervisor knows.</summary>
public static class HvmParam
{
    public const int CallbackIrq = 0;
    public const int StorePfn = 1;
    public const int StoreEvtchn = 2;
    public const int PaeEnabled = 4;
    public const int TimerMode = 10;
    public const int ConsolePfn = 17;
    public const int ConsoleEvtchn = 18;
    public const int Count = 39;

    /// <summary>CALLBACK_IRQ's type in bits 63:56: 0 = a GSI, 1 = a PCI INTx line, 2 = a vector.</summary>
    public const int CallbackTypeShift = 56;
    public const ulong CallbackTypeGsi = 0;
    public const ulong CallbackTypePciIntx = 1;
    public const ulong CallbackTypeVector = 2;
}
