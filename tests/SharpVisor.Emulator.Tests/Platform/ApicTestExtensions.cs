using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>32-bit xAPIC register access, as the guest does it through the APIC page.</summary>
internal static class ApicTestExtensions
{
    public static uint ReadRegister(this LocalApic apic, uint offset)
    {
        Span<byte> data = stackalloc byte[4];
        apic.Read(offset, data);
        return BitConverter.ToUInt32(data);
    }

    public static void WriteRegister(this LocalApic apic, uint offset, uint value) =>
        apic.Write(offset, BitConverter.GetBytes(value));

    /// <summary>What Linux's setup_local_APIC does first: software-enable with spurious vector 0xFF.</summary>
    public static void SoftwareEnable(this LocalApic apic) => apic.WriteRegister(ApicRegister.SpuriousVector, 0x1FF);

    public static bool IrrBit(this LocalApic apic, int vector) =>
        (apic.ReadRegister(ApicRegister.InterruptRequest + (uint)(vector / 32 * 16)) & (1u << (vector % 32))) != 0;

    public static bool IsrBit(this LocalApic apic, int vector) =>
        (apic.ReadRegister(ApicRegister.InService + (uint)(vector / 32 * 16)) & (1u << (vector % 32))) != 0;

    public static bool TmrBit(this LocalApic apic, int vector) =>
        (apic.ReadRegister(ApicRegister.TriggerMode + (uint)(vector / 32 * 16)) & (1u << (vector % 32))) != 0;

    /// <summary>Sends an IPI the xAPIC way: destination in ICR high, then the command in ICR low.</summary>
    public static void SendIpi(this LocalApic apic, uint destination, uint command)
    {
        apic.WriteRegister(ApicRegister.InterruptCommandHigh, destination << 24);
        apic.WriteRegister(ApicRegister.InterruptCommandLow, command);
    }

    public static void EndOfInterrupt(this LocalApic apic) => apic.WriteRegister(ApicRegister.EndOfInterrupt, 0);

    public static int TakeInterrupt(this LocalApic apic)
    {
        Assert.True(apic.TryTakeInterrupt(out int vector), "expected a pending interrupt");
        return vector;
    }

    public static void AssertNoInterrupt(this LocalApic apic)
    {
        bool pending = apic.TryGetPendingInterrupt(out int vector);
        Assert.False(pending, $"unexpected interrupt 0x{vector:x2}");
    }
}
