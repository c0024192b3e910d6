using System.Text;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>Compares a native and an emulated result; returns null when they agree, else what differs.</summary>
internal static class DiffComparer
{
    private static readonly string[] s_names =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    /// <summary>Vectors that push an error code.</summary>
    private static bool HasErrorCode(ulong vector) => vector is 8 or 10 or 11 or 12 or 13 or 14 or 17;

    public static string? Compare(DiffCase c, DiffResult native, DiffResult emulated, ulong undefinedFlags, CompareOptions options)
    {
        var diff = new StringBuilder();
        if (native.Outcome != emulated.Outcome)
        {
            return $"native {native.Describe()} vs emulator {emulated.Describe()}";
        }

        if (native.Outcome == DiffOutcome.Timeout)
        {
            return null;
        }

        if (native.Outcome == DiffOutcome.Fault)
        {
            if (native.Vector != emulated.Vector
                || (HasErrorCode(native.Vector) && native.ErrorCode != emulated.ErrorCode)
                || (native.Vector == 14 && native.Cr2 != emulated.Cr2)
                || native.Rip != emulated.Rip)
            {
                return $"native {native.Describe()} vs emulator {emulated.Describe()}";
            }
        }

        for (int i = 0; i < 16; i++)
        {
            if (native.Gpr[i] != emulated.Gpr[i])
            {
                diff.Append($"{s_names[i]} native 0x{native.Gpr[i]:x} emulator 0x{emulated.Gpr[i]:x}; ");
            }
        }

        ulong flagMask = RflagsBits.Defined & ~RflagsBits.Resume & ~undefinedFlags;
        if ((native.Rflags & flagMask) != (emulated.Rflags & flagMask))
        {
            diff.Append($"rflags native 0x{native.Rflags & flagMask:x} emulator 0x{emulated.Rflags & flagMask:x} (undefined 0x{undefinedFlags:x}); ");
        }

        // MXCSR and XMM0-15 from the FXSAVE images.
        uint nativeMxcsr = BitConverter.ToUInt32(native.Fx, 24);
        uint emulatedMxcsr = BitConverter.ToUInt32(emulated.Fx, 24);
        if (nativeMxcsr != emulatedMxcsr)
        {
            diff.Append($"mxcsr native 0x{nativeMxcsr:x} emulator 0x{emulatedMxcsr:x}; ");
        }

        for (int i = 0; i < 16; i++)
        {
            ReadOnlySpan<byte> a = native.Fx.AsSpan(160 + (16 * i), 16);
            ReadOnlySpan<byte> b = emulated.Fx.AsSpan(160 + (16 * i), 16);
            if (!a.SequenceEqual(b))
            {
                diff.Append($"xmm{i} native {Hex(a)} emulator {Hex(b)}; ");
            }
        }

        if (options.CompareX87)
        {
            CompareX87(native.Fx, emulated.Fx, diff);
        }

        for (int offset = 0; offset < DiffCase.DataSize; offset++)
        {
            if (native.Data[offset] != emulated.Data[offset])
            {
                int end = offset;
                while (end < DiffCase.DataSize && end < offset + 16)
                {
                    end++;
                }

                diff.Append($"memory +0x{offset:x} native {Hex(native.Data.AsSpan(offset, end - offset))} emulator {Hex(emulated.Data.AsSpan(offset, end - offset))}; ");
                break;
            }
        }

        return diff.Length == 0 ? null : diff.ToString();
    }

    private static void CompareX87(byte[] native, byte[] emulated, StringBuilder diff)
    {
        // FCW, FSW, abridged FTW, FOP; ST0-7 (10 bytes each).
        ushort fcwN = BitConverter.ToUInt16(native, 0), fcwE = BitConverter.ToUInt16(emulated, 0);
        ushort fswN = BitConverter.ToUInt16(native, 2), fswE = BitConverter.ToUInt16(emulated, 2);
        if (fcwN != fcwE || fswN != fswE || native[4] != emulated[4])
        {
            diff.Append($"x87 fcw/fsw/ftw native {fcwN:x4}/{fswN:x4}/{native[4]:x2} emulator {fcwE:x4}/{fswE:x4}/{emulated[4]:x2}; ");
        }

        ushort fopN = BitConverter.ToUInt16(native, 6), fopE = BitConverter.ToUInt16(emulated, 6);
        ulong fipN = BitConverter.ToUInt64(native, 8), fipE = BitConverter.ToUInt64(emulated, 8);
        ulong fdpN = BitConverter.ToUInt64(native, 16), fdpE = BitConverter.ToUInt64(emulated, 16);
        if (fopN != fopE || fipN != fipE || fdpN != fdpE)
        {
            diff.Append($"x87 fop/fip/fdp native {fopN:x}/{fipN:x}/{fdpN:x} emulator {fopE:x}/{fipE:x}/{fdpE:x}; ");
        }

        for (int i = 0; i < 8; i++)
        {
            ReadOnlySpan<byte> a = native.AsSpan(32 + (16 * i), 10);
            ReadOnlySpan<byte> b = emulated.AsSpan(32 + (16 * i), 10);
            if (!a.SequenceEqual(b))
            {
                diff.Append($"st{i} native {Hex(a)} emulator {Hex(b)}; ");
            }
        }
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}

/// <summary>What the comparer checks beyond registers, flags, SSE state and memory.</summary>
internal sealed record CompareOptions(bool CompareX87);
