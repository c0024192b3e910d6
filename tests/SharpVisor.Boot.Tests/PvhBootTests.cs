using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Boot.Tests;

/// <summary>PVH boot: the LZ4 payload, the PHYS32_ENTRY note and hvm_start_info.</summary>
public sealed class PvhBootTests : IDisposable
{
    private readonly TempFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public void Lz4Block_LiteralsAndOverlappingMatches()
    {
        // "abc" then a match of 9 at offset 3 ("abcabcabc"), then the last literals "Z".
        byte[] block = [0x35, (byte)'a', (byte)'b', (byte)'c', 3, 0, 0x10, (byte)'Z'];
        var output = new byte[13];
        Assert.Equal(13, Lz4LegacyFrame.DecodeBlock("t", block, output));
        Assert.Equal("abcabcabcabcZ", System.Text.Encoding.ASCII.GetString(output));
    }

    [Theory]
    [InlineData(new byte[] { 0x10, (byte)'a', 5, 0 })]            // offset beyond the output
    [InlineData(new byte[] { 0xF0, 255, 255 })]                    // length cut off
    [InlineData(new byte[] { 0x50, (byte)'a' })]                   // literals overrun the block
    public void Lz4Block_CorruptInputIsABootError(byte[] block)
    {
        Assert.Throws<BootImageException>(() => Lz4LegacyFrame.DecodeBlock("t", block, new byte[64]));
    }

    [Fact]
    public void Lz4Frame_DeclaredSizeMustMatch()
    {
        byte[] frame = [0x02, 0x21, 0x4C, 0x18, 2, 0, 0, 0, 0x10, (byte)'x', 5, 0, 0, 0];
        Assert.Throws<BootImageException>(() => Lz4LegacyFrame.Decode("t", frame));
        frame[^4] = 1;
        Assert.Equal("x"u8.ToArray(), Lz4LegacyFrame.Decode("t", frame));
    }

    [GuestKernelFact]
    public void TheRealKernelBootsAsPvh()
    {
        PvhImage image = PvhImage.Load(GuestKernelFactAttribute.Path);
        Assert.StartsWith("bzImage, LZ4", image.Source, StringComparison.Ordinal);
        Assert.InRange(image.Entry, 0x100_0000u, 0x4000_0000u);

        string initrd = _files.WritePattern("initrd", 1 << 20, 7);
        using GuestMemory memory = GuestMemory.CreateRam(256UL << 20);
        ulong special = (256UL << 20) - 0x4000;
        BootResult result = PvhBoot.Load(memory, new BootRequest(GuestKernelFactAttribute.Path) { CommandLine = "console=hvc0", InitrdPath = initrd }, 0xE0000, [(special, 0x4000)]);

        Assert.Equal(KernelFormat.Pvh, result.Format);
        Assert.Equal(image.Entry, result.EntryPoint);
        Assert.False(result.State.Cs.Long);
        Assert.Equal(0UL, result.State.Cr0 & 0x8000_0000);   // paging off
        Assert.Equal(PvhBoot.StartInfoAddress, result.State.Rbx);
        Span<byte> info = memory.GetSpan(PvhBoot.StartInfoAddress, PvhBoot.StartInfoSize);
        Assert.Equal(PvhBoot.StartInfoMagic, BinaryPrimitives.ReadUInt32LittleEndian(info));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(info[12..]));
        Assert.Equal(0xE0000UL, BinaryPrimitives.ReadUInt64LittleEndian(info[32..]));
        ulong module = BinaryPrimitives.ReadUInt64LittleEndian(info[16..]);
        Assert.Equal(result.Find("initrd")!.Value.Address, memory.Read<ulong>(module));
        Assert.Equal(1UL << 20, memory.Read<ulong>(module + 8));
        Assert.Contains(result.MemoryMap.Entries, e => e.Address == special && e.Type == E820Type.Reserved);
        Assert.Equal("console=hvc0", System.Text.Encoding.ASCII.GetString(memory.GetSpan(BinaryPrimitives.ReadUInt64LittleEndian(info[24..]), 12)));
    }
}
