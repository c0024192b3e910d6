namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// One differential test case: the initial registers, RFLAGS, FXSAVE image (x87/SSE state),
/// the seed of the data window's contents plus patches over it, and the code bytes.
/// </summary>
internal sealed class DiffCase
{
    public const ulong DataBase = 0x1000_0000;
    public const int DataSize = 0x2000;
    public const ulong CodeBase = 0x2000_0000;
    public const int CodePageSize = 0x1000;
    public const ulong ExitSlot = 0x3000_0000;

    /// <summary>The bytes the harness puts after the code: jmp [ExitSlot].</summary>
    public static ReadOnlySpan<byte> ExitStub => [0xFF, 0x24, 0x25, 0x00, 0x00, 0x00, 0x30];

    public required string Family { get; init; }

    public required ulong Seed { get; init; }

    public required int Index { get; init; }

    public ulong[] Gpr { get; } = new ulong[16];

    public ulong Rflags { get; set; } = 0x202;

    public byte[] Fx { get; } = DefaultFx();

    public ulong MemorySeed { get; set; }

    public List<(ushort Offset, byte[] Bytes)> Patches { get; } = new();

    public byte[] Code { get; set; } = [];

    /// <summary>False when the bytes must not run natively (system calls, segment loads, instructions the emulator lacks): the case then only checks that the emulator copes.</summary>
    public bool NativeSafe { get; set; } = true;

    /// <summary>Human-readable listing of the generated instructions.</summary>
    public string Listing { get; set; } = "";

    public static byte[] DefaultFx()
    {
        byte[] fx = new byte[512];
        BitConverter.TryWriteBytes(fx.AsSpan(0), (ushort)0x037F);
        BitConverter.TryWriteBytes(fx.AsSpan(24), 0x1F80u);
        BitConverter.TryWriteBytes(fx.AsSpan(28), 0xFFFFu);
        return fx;
    }

    /// <summary>The data window's initial contents: a splitmix64 stream from <see cref="MemorySeed"/> with the patches applied.</summary>
    public byte[] InitialData() => _initialData ??= BuildInitialData();

    private byte[]? _initialData;

    private byte[] BuildInitialData()
    {
        byte[] data = new byte[DataSize];
        ulong state = MemorySeed;
        for (int i = 0; i < DataSize; i += 8)
        {
            BitConverter.TryWriteBytes(data.AsSpan(i), SplitMix.Next(ref state));
        }

        foreach ((ushort offset, byte[] bytes) in Patches)
        {
            bytes.CopyTo(data, offset);
        }

        return data;
    }

    /// <summary>The code page as both sides see it: code, exit stub, HLT filler.</summary>
    public byte[] CodePage()
    {
        byte[] page = new byte[CodePageSize];
        page.AsSpan().Fill(0xF4);
        Code.CopyTo(page, 0);
        ExitStub.CopyTo(page.AsSpan(Code.Length));
        return page;
    }

    public string Reproducer => $"SHARPVISOR_DIFFTEST_REPRO={Family}:0x{Seed:x}:{Index}";
}
