using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_xcrs: up to 16 extended control registers (struct kvm_xcr: u32 xcr, u32 reserved,
/// u64 value — kept here as two u64 words per entry), then padding. XCR0 is the XSAVE feature mask.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 392)]
public unsafe struct KvmXcrs
{
    public const int MaxXcrs = 16;

    [FieldOffset(0)] public uint NrXcrs;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public fixed ulong Entries[MaxXcrs * 2];

    /// <summary>The value of XCR <paramref name="xcr"/>, if KVM reported it.</summary>
    public bool TryGet(uint xcr, out ulong value)
    {
        uint count = Math.Min(NrXcrs, MaxXcrs);
        for (int i = 0; i < count; i++)
        {
            if ((uint)Entries[2 * i] == xcr)
            {
                value = Entries[(2 * i) + 1];
                return true;
            }
        }

        value = 0;
        return false;
    }

    /// <summary>A kvm_xcrs holding one register, for KVM_SET_XCRS.</summary>
    public static KvmXcrs Single(uint xcr, ulong value)
    {
        var xcrs = new KvmXcrs { NrXcrs = 1 };
        xcrs.Entries[0] = xcr;
        xcrs.Entries[1] = value;
        return xcrs;
    }
}
