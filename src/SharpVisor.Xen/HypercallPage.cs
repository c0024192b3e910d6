using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen;

/// <summary>
/// The hypercall page Xen writes where the guest asks (MSR 0x40000000): 128 stubs of 32 bytes,
/// stub n being "mov eax, n; vmcall (or vmmcall); ret". The iret stub, which HVM guests must not
/// use, is ud2.
/// </summary>
public static class HypercallPage
{
    public const int Size = 4096;
    public const int StubSize = 32;

    public static byte[] Build(HypercallInstruction instruction)
    {
        var page = new byte[Size];
        byte modrm = instruction == HypercallInstruction.Vmmcall ? (byte)0xD9 : (byte)0xC1;
        for (int op = 0; op < Size / StubSize; op++)
        {
            Span<byte> stub = page.AsSpan(op * StubSize, StubSize);
            if (op == (int)HypercallOp.Iret)
            {
                stub[0] = 0x0F;
                stub[1] = 0x0B;
                continue;
            }

            stub[0] = 0xB8;
            BitConverter.TryWriteBytes(stub[1..5], op);
            stub[5] = 0x0F;
            stub[6] = 0x01;
            stub[7] = modrm;
            stub[8] = 0xC3;
        }

        return page;
    }
}
