namespace SharpVisor.Emulator.Platform;

/// <summary>Local APIC register offsets in the xAPIC page (x2APIC MSR = 0x800 + offset / 16).</summary>
public static class ApicRegister
{
    public const uint Id = 0x20;
    public const uint Version = 0x30;
    public const uint TaskPriority = 0x80;
    public const uint ArbitrationPriority = 0x90;
    public const uint ProcessorPriority = 0xA0;
    public const uint EndOfInterrupt = 0xB0;
    public const uint RemoteRead = 0xC0;
    public const uint LogicalDestination = 0xD0;
    public const uint DestinationFormat = 0xE0;
    public const uint SpuriousVector = 0xF0;
    public const uint InService = 0x100;
    public const uint TriggerMode = 0x180;
    public const uint InterruptRequest = 0x200;
    public const uint ErrorStatus = 0x280;
    public const uint InterruptCommandLow = 0x300;
    public const uint InterruptCommandHigh = 0x310;
    public const uint LvtTimer = 0x320;
    public const uint LvtThermal = 0x330;
    public const uint LvtPerformance = 0x340;
    public const uint LvtLint0 = 0x350;
    public const uint LvtLint1 = 0x360;
    public const uint LvtError = 0x370;
    public const uint TimerInitialCount = 0x380;
    public const uint TimerCurrentCount = 0x390;
    public const uint TimerDivideConfiguration = 0x3E0;
    public const uint SelfIpi = 0x3F0;
}
