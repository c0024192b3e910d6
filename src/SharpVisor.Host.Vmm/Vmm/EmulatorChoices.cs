using SharpVisor.Emulator;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Host.Vmm;

/// <summary>The configuration's <see cref="MmuKind"/> and <see cref="CpuVendorKind"/> as the emulator's types, and back.</summary>
public static class EmulatorChoices
{
    public static MmuMode ToMmuMode(this MmuKind kind) => kind == MmuKind.Nested ? MmuMode.Nested : MmuMode.Shadow;

    public static MmuMode? ToMmuMode(this MmuKind? kind) => kind?.ToMmuMode();

    public static MmuKind ToMmuKind(this MmuMode mode) => mode == MmuMode.Nested ? MmuKind.Nested : MmuKind.Shadow;

    public static CpuVendor ToCpuVendor(this CpuVendorKind kind) => kind == CpuVendorKind.Amd ? CpuVendor.Amd : CpuVendor.Intel;

    public static CpuVendor? ToCpuVendor(this CpuVendorKind? kind) => kind?.ToCpuVendor();

    public static CpuVendorKind ToCpuVendorKind(this CpuVendor vendor) => vendor == CpuVendor.Amd ? CpuVendorKind.Amd : CpuVendorKind.Intel;
}
