namespace SharpVisor.Emulator;

/// <summary>IN and OUT (port in Imm, or DX when Aux = 1), dispatched to the CPU's port-I/O bus.</summary>
internal static class IoHandlers
{
    private static ushort Port(X86Cpu cpu, ref Op op) => op.Aux == 1 ? (ushort)cpu.Gpr(2) : (ushort)op.Imm;

    public static void In<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ushort port = Port(cpu, ref op);
        cpu.CheckIoPermission(port, TSize.Bytes);
        Span<byte> data = stackalloc byte[4];
        data.Fill(0xFF);
        cpu.PortIo?.Read(port, data[..TSize.Bytes]);
        TSize.WriteReg(cpu, 0, BitConverter.ToUInt32(data));
    }

    public static void Out<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ushort port = Port(cpu, ref op);
        cpu.CheckIoPermission(port, TSize.Bytes);
        Span<byte> data = stackalloc byte[4];
        BitConverter.TryWriteBytes(data, (uint)TSize.ReadReg(cpu, 0));
        cpu.PortIo?.Write(port, data[..TSize.Bytes]);
    }
}
