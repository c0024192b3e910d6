using Iced.Intel;
using SharpVisor.Memory;
using Xunit.Abstractions;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// The CPU model advertises exactly what the core executes: every legacy-encoded instruction
/// whose CPUID features the default model advertises (or that every x86-64 CPU has) is bound to
/// a handler. The instructions are found by decoding every opcode/ModRM combination under each
/// mandatory prefix and REX.W, in 64-bit and 32-bit code.
/// </summary>
public sealed class CpuModelTests
{
    private readonly ITestOutputHelper _output;

    public CpuModelTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>The model feature an Iced CPUID feature needs; None for the x86-64 baseline; null for features no model advertises.</summary>
    private static CpuFeature? ModelFeature(CpuidFeature feature) => feature switch
    {
        CpuidFeature.INTEL8086 or CpuidFeature.INTEL186 or CpuidFeature.INTEL286 or CpuidFeature.INTEL386
            or CpuidFeature.INTEL486 or CpuidFeature.X64 or CpuidFeature.CPUID or CpuidFeature.MULTIBYTENOP
            or CpuidFeature.PAUSE => CpuFeature.None,
        CpuidFeature.FPU or CpuidFeature.FPU287 or CpuidFeature.FPU387 => CpuFeature.Fpu,
        CpuidFeature.TSC => CpuFeature.Tsc,
        CpuidFeature.CX8 => CpuFeature.Cx8,
        CpuidFeature.CMOV => CpuFeature.Cmov,
        CpuidFeature.CLFSH => CpuFeature.Clflush,
        CpuidFeature.MMX => CpuFeature.Mmx,
        CpuidFeature.FXSR => CpuFeature.Fxsr,
        CpuidFeature.SSE => CpuFeature.Sse,
        CpuidFeature.SSE2 => CpuFeature.Sse2,
        CpuidFeature.SSE3 => CpuFeature.Sse3,
        CpuidFeature.SSSE3 => CpuFeature.Ssse3,
        CpuidFeature.CMPXCHG16B => CpuFeature.Cx16,
        CpuidFeature.SSE4_1 => CpuFeature.Sse41,
        CpuidFeature.SSE4_2 => CpuFeature.Sse42,
        CpuidFeature.MOVBE => CpuFeature.Movbe,
        CpuidFeature.POPCNT => CpuFeature.Popcnt,
        CpuidFeature.XSAVE => CpuFeature.Xsave,
        CpuidFeature.RDRAND => CpuFeature.Rdrand,
        CpuidFeature.RDSEED => CpuFeature.Rdseed,
        CpuidFeature.BMI1 => CpuFeature.Bmi1,
        CpuidFeature.BMI2 => CpuFeature.Bmi2,
        CpuidFeature.ADX => CpuFeature.Adx,
        CpuidFeature.LZCNT => CpuFeature.Lzcnt,
        CpuidFeature.RDTSCP => CpuFeature.Rdtscp,
        CpuidFeature.SYSCALL => CpuFeature.Syscall,
        CpuidFeature.PCLMULQDQ => CpuFeature.Pclmulqdq,
        CpuidFeature.FSGSBASE => CpuFeature.Fsgsbase,
        CpuidFeature.MSR => CpuFeature.Msr,
        CpuidFeature.SEP => CpuFeature.Sep,
        _ => null,
    };

    /// <summary>
    /// System instructions (segment and descriptor-table loads, control/debug registers, far
    /// transfers, SYSCALL/IRET, string I/O): the system-state work (X86Cpu.System) binds these;
    /// this test covers the rest of the instruction set.
    /// </summary>
    private static readonly HashSet<Mnemonic> s_systemMnemonics =
    [
        Mnemonic.Lgdt, Mnemonic.Lidt, Mnemonic.Lldt, Mnemonic.Ltr, Mnemonic.Lmsw, Mnemonic.Sgdt, Mnemonic.Sidt, Mnemonic.Sldt,
        Mnemonic.Smsw, Mnemonic.Str, Mnemonic.Lar, Mnemonic.Lsl, Mnemonic.Verr, Mnemonic.Verw, Mnemonic.Clts, Mnemonic.Invd,
        Mnemonic.Wbinvd, Mnemonic.Invlpg, Mnemonic.Lds, Mnemonic.Les, Mnemonic.Lfs, Mnemonic.Lgs, Mnemonic.Lss, Mnemonic.Iret,
        Mnemonic.Iretd, Mnemonic.Iretq, Mnemonic.Retf, Mnemonic.Swapgs, Mnemonic.Syscall, Mnemonic.Sysret, Mnemonic.Sysretq,
        Mnemonic.Sysenter, Mnemonic.Sysexit, Mnemonic.Sysexitq, Mnemonic.Rdmsr, Mnemonic.Wrmsr, Mnemonic.Insb,
        Mnemonic.Insw, Mnemonic.Insd, Mnemonic.Outsb, Mnemonic.Outsw, Mnemonic.Outsd, Mnemonic.Rdfsbase,
        Mnemonic.Rdgsbase, Mnemonic.Wrfsbase, Mnemonic.Wrgsbase,
    ];

    private static bool IsSystemInstruction(in Instruction ins)
    {
        if (s_systemMnemonics.Contains(ins.Mnemonic) || ins.IsJmpFar || ins.IsCallFar || ins.IsJmpFarIndirect || ins.IsCallFarIndirect)
        {
            return true;
        }

        for (int i = 0; i < ins.OpCount; i++)
        {
            if (ins.GetOpKind(i) == OpKind.Register
                && (ins.GetOpRegister(i).IsSegmentRegister() || ins.GetOpRegister(i).IsCR() || ins.GetOpRegister(i).IsDR()))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// One decoded instance of every instruction reachable from one-, 0F-, 0F38- and 0F3A-map opcodes
    /// (ModRM: every register form, and one memory form per reg field).
    /// </summary>
    private static Dictionary<Code, Instruction> DecodeOpcodeSpace(int bitness)
    {
        var found = new Dictionary<Code, Instruction>();
        byte[] bytes = new byte[16];
        var reader = new ByteArrayCodeReader(bytes);
        var decoder = Decoder.Create(bitness, reader);
        byte[][] maps = [[], [0x0F], [0x0F, 0x38], [0x0F, 0x3A]];
        byte[] prefixes = [0, 0x66, 0xF2, 0xF3];
        int[] modrms = Enumerable.Range(0xC0, 64).Concat(Enumerable.Range(0, 8).Select(reg => reg << 3)).ToArray();
        foreach (byte prefix in prefixes)
        {
            foreach (bool rexW in bitness == 64 ? new[] { false, true } : new[] { false })
            {
                foreach (byte[] map in maps)
                {
                    for (int opcode = 0; opcode < 256; opcode++)
                    {
                        foreach (int modrm in modrms)
                        {
                            Array.Clear(bytes);
                            int n = 0;
                            if (prefix != 0)
                            {
                                bytes[n++] = prefix;
                            }

                            if (rexW)
                            {
                                bytes[n++] = 0x48;
                            }

                            map.CopyTo(bytes, n);
                            n += map.Length;
                            bytes[n++] = (byte)opcode;
                            bytes[n] = (byte)modrm;
                            reader.Position = 0;
                            decoder.IP = 0;
                            Instruction ins = decoder.Decode();
                            if (!ins.IsInvalid && ins.Code.ToOpCode().Encoding == EncodingKind.Legacy)
                            {
                                found.TryAdd(ins.Code, ins);
                            }
                        }
                    }
                }
            }
        }

        return found;
    }

    [Fact]
    public void EveryAdvertisedInstructionIsImplemented()
    {
        CpuModel model = CpuModel.Default;
        using var memory = new GuestMemory();
        var cpu = new X86Cpu(new PhysicalMemory(memory));
        var missing = new SortedSet<string>();
        int checkedCount = 0;
        foreach (int bitness in new[] { 64, 32 })
        {
            foreach ((Code code, Instruction ins) in DecodeOpcodeSpace(bitness))
            {
                CpuidFeature[] features = code.CpuidFeatures();
                bool advertised = features.All(f => ModelFeature(f) is CpuFeature m && model.Has(m));
                if (!advertised || IsSystemInstruction(in ins))
                {
                    continue;
                }

                checkedCount++;
                if (!InstructionBinder.IsImplemented(in ins, cpu))
                {
                    missing.Add($"{code} ({string.Join("+", features)})");
                }
            }
        }

        _output.WriteLine($"{checkedCount} advertised instruction forms checked");
        Assert.True(checkedCount > 1000, $"only {checkedCount} instruction forms were found");
        Assert.True(missing.Count == 0, "advertised but not implemented:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void DefaultModelAdvertisesOnlyImplementedInstructionSets()
    {
        Assert.Equal(CpuModel.ImplementedInstructionSets, CpuModel.Default.Features);
        Assert.False(CpuModel.Default.Has(CpuFeature.Pclmulqdq));
        (uint _, uint _, uint ecx, uint _) = CpuModel.Default.Query(1, 0, osxsave: true);
        Assert.Equal(0u, ecx & (1u << 28)); // AVX
        Assert.Equal(0u, ecx & (1u << 25)); // AES
        Assert.Equal(0u, ecx & (1u << 1)); // PCLMULQDQ
        Assert.Equal(0u, ecx & (1u << 3)); // MONITOR/MWAIT
    }
}
