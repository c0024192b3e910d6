using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_sregs (x86): segments, descriptor tables, control registers, EFER, APIC base and the pending-interrupt bitmap.</summary>
[StructLayout(LayoutKind.Explicit, Size = 312)]
public unsafe struct KvmSregs
{
    /// <summary>KVM_NR_INTERRUPTS (256) bits in 64-bit words.</summary>
    public const int InterruptBitmapWords = 4;

    [FieldOffset(0)] public KvmSegment Cs;
    [FieldOffset(24)] public KvmSegment Ds;
    [FieldOffset(48)] public KvmSegment Es;
    [FieldOffset(72)] public KvmSegment Fs;
    [FieldOffset(96)] public KvmSegment Gs;
    [FieldOffset(120)] public KvmSegment Ss;
    [FieldOffset(144)] public KvmSegment Tr;
    [FieldOffset(168)] public KvmSegment Ldt;
    [FieldOffset(192)] public KvmDtable Gdt;
    [FieldOffset(208)] public KvmDtable Idt;
    [FieldOffset(224)] public ulong Cr0;
    [FieldOffset(232)] public ulong Cr2;
    [FieldOffset(240)] public ulong Cr3;
    [FieldOffset(248)] public ulong Cr4;
    [FieldOffset(256)] public ulong Cr8;
    [FieldOffset(264)] public ulong Efer;
    [FieldOffset(272)] public ulong ApicBase;
    [FieldOffset(280)] public fixed ulong InterruptBitmap[InterruptBitmapWords];
}
