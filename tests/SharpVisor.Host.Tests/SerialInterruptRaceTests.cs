using System.Diagnostics;
using SharpVisor.Devices.Legacy;
using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Issue 10's output stall, hypothesis "a lost transmit interrupt": the emulator's real interrupt
/// path (16550 → I/O APIC pin 4, edge-triggered → local APIC) under a CPU thread that follows
/// Linux 6.1's 8250 driver (start_tx by IER, serial8250_interrupt looping until IIR says no
/// interrupt, EOI first as handle_edge_irq/apic_ack_edge do, the printk console's IER
/// save/clear/restore) and halts as a tickless idle guest does — nothing but an interrupt wakes it
/// — while a second thread types into the UART at random moments. A lost edge leaves bytes
/// queued with the CPU asleep: the test sees that as a wake-up that never comes.
/// </summary>
public sealed class SerialInterruptRaceTests
{
    private const int Vector = 0x24;
    private const byte IerRdi = Serial16550.IerReceivedData;
    private const byte IerThri = Serial16550.IerTransmitterEmpty;
    private const byte IerRlsi = Serial16550.IerReceiverLineStatus;
    private const string PrintkText = "[printk]";

    // A stalled transmitter waits forever; a working one is woken within microseconds.
    private static readonly TimeSpan s_stallTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void NoTransmitOrReceiveInterruptIsLostWhileInputRacesTheDriver()
    {
        var chip = new SoftwareIrqChip(1, new PlatformTimeBase());
        LocalApic apic = chip.GetLocalApic(0);
        WriteApic(apic, 0xF0, 0x1FF); // SVR: software-enabled, spurious vector 0xFF

        // As Linux sets up an I/O APIC machine: the 8259s masked, LINT0 (virtual wire) masked.
        chip.Pic.MasterPorts.Write(1, [0xFF]);
        chip.Pic.SlavePorts.Write(1, [0xFF]);
        WriteApic(apic, 0x350, 0x1_0700);
        WriteIoApic(chip.IoApic, 0x10 + (2 * 4), Vector); // pin 4: fixed, physical, edge, unmasked
        WriteIoApic(chip.IoApic, 0x11 + (2 * 4), 0); // destination APIC ID 0

        var output = new MemoryStream();
        var uart = new Serial16550(new InterruptLine(chip, Serial16550.Com1Irq), output);
        var driver = new Driver(uart, apic);
        driver.Startup();

        const int inputBytes = 20_000;
        byte[] typed = new byte[inputBytes];
        for (int i = 0; i < typed.Length; i++)
        {
            typed[i] = (byte)('a' + (i % 26));
        }

        using var inputDone = new ManualResetEventSlim(false);
        var typist = new Thread(() =>
        {
            var random = new Random(10);
            int sent = 0;
            while (sent < typed.Length)
            {
                int chunk = Math.Min(random.Next(1, 8), typed.Length - sent);
                sent += uart.OfferInput(typed.AsSpan(sent, chunk));
                if (random.Next(4) == 0)
                {
                    Thread.Yield();
                }
                else
                {
                    Thread.SpinWait(random.Next(1, 2000));
                }
            }

            inputDone.Set();
        })
        { IsBackground = true, Name = "typist" };

        var expected = new List<byte>();
        int printks = 0;
        var random = new Random(42);
        typist.Start();
        for (int message = 0; message < 3000; message++)
        {
            byte[] text = new byte[random.Next(1, 120)];
            for (int i = 0; i < text.Length; i++)
            {
                text[i] = (byte)('A' + random.Next(26));
            }

            expected.AddRange(text);
            driver.Write(text);
            if (random.Next(8) == 0)
            {
                // A kernel message between tty writes: polled, with the IER saved and restored.
                driver.ConsoleWrite(System.Text.Encoding.ASCII.GetBytes(PrintkText));
                printks++;
            }

            // Idle until some or all of it went out (the tty layer does not wait; the shell may).
            driver.IdleUntil(() => driver.PendingTransmit <= random.Next(0, 64), s_stallTimeout);
        }

        driver.IdleUntil(() => driver.PendingTransmit == 0, s_stallTimeout);

        // The driver keeps taking input while the typist finishes: a slow typist (a loaded host)
        // can only hand over more once the driver has drained the FIFO.
        driver.IdleUntil(() => driver.Received.Count == typed.Length, s_stallTimeout);
        Assert.True(inputDone.Wait(s_stallTimeout), "the typist could not hand over its input");
        typist.Join();

        // Kernel messages go out at once, ahead of tty text still queued: compare them apart.
        string sent = System.Text.Encoding.ASCII.GetString(output.ToArray());
        Assert.Equal(printks, (sent.Length - sent.Replace(PrintkText, "", StringComparison.Ordinal).Length) / PrintkText.Length);
        Assert.Equal(System.Text.Encoding.ASCII.GetString(expected.ToArray()), sent.Replace(PrintkText, "", StringComparison.Ordinal));
        Assert.Equal(typed, driver.Received.ToArray());
        Assert.True(driver.Interrupts > 100, $"only {driver.Interrupts} interrupts: the test did not exercise the interrupt path");
    }

    private static void WriteApic(LocalApic apic, ulong offset, uint value) => apic.Write(offset, BitConverter.GetBytes(value));

    private static void WriteIoApic(IoApic ioApic, uint register, uint value)
    {
        ioApic.Write(IoApic.RegisterSelectOffset, BitConverter.GetBytes(register));
        ioApic.Write(IoApic.WindowOffset, BitConverter.GetBytes(value));
    }

    /// <summary>The guest CPU: Linux 6.1's 8250 driver (8250_port.c) on a one-vCPU tickless kernel.</summary>
    private sealed class Driver
    {
        private const int TxLoadSize = 16;
        private const int PassLimit = 512;

        private readonly Serial16550 _uart;
        private readonly LocalApic _apic;
        private readonly Queue<byte> _transmit = new();
        private byte _ier;

        public Driver(Serial16550 uart, LocalApic apic)
        {
            _uart = uart;
            _apic = apic;
        }

        public List<byte> Received { get; } = new();

        public int PendingTransmit => _transmit.Count;

        public int Interrupts { get; private set; }

        public void Startup()
        {
            Out(Serial16550.FifoControlRegister, Serial16550.FcrEnable | 0x80);
            Out(Serial16550.ModemControlRegister, Serial16550.McrDtr | Serial16550.McrRts | Serial16550.McrOut2);
            _ier = IerRlsi | IerRdi;
            Out(Serial16550.InterruptEnableRegister, _ier);
        }

        /// <summary>uart_write(): queue, then serial8250_start_tx() sets IER.THRI if it was clear.</summary>
        public void Write(byte[] text)
        {
            foreach (byte b in text)
            {
                _transmit.Enqueue(b);
            }

            if ((_ier & IerThri) == 0)
            {
                _ier |= IerThri;
                Out(Serial16550.InterruptEnableRegister, _ier);
            }
        }

        /// <summary>serial8250_console_write(): IER saved and cleared, bytes polled out, IER restored.</summary>
        public void ConsoleWrite(byte[] text)
        {
            byte saved = In(Serial16550.InterruptEnableRegister);
            Out(Serial16550.InterruptEnableRegister, 0);
            foreach (byte b in text)
            {
                while ((In(Serial16550.LineStatusRegister) & Serial16550.LsrTransmitterHoldingEmpty) == 0)
                {
                }

                Out(Serial16550.DataRegister, b);
            }

            while ((In(Serial16550.LineStatusRegister) & Serial16550.LsrTransmitterEmpty) == 0)
            {
            }

            Out(Serial16550.InterruptEnableRegister, saved);
        }

        /// <summary>
        /// Runs interrupts until <paramref name="done"/>; in between, halts (STI; HLT) with no
        /// timer, so only the UART's interrupts can wake it. A halt that lasts
        /// <paramref name="stallTimeout"/> is the reported stall.
        /// </summary>
        public void IdleUntil(Func<bool> done, TimeSpan stallTimeout)
        {
            while (!done())
            {
                if (_apic.TryTakeInterrupt(out int vector))
                {
                    Assert.Equal(Vector, vector);
                    Interrupts++;

                    // handle_edge_irq: the chip's ack (the local APIC's EOI) comes before the handler.
                    WriteApic(_apic, 0xB0, 0);
                    SerialInterrupt();
                    continue;
                }

                var halted = Stopwatch.StartNew();
                while (!_apic.TryGetPendingInterrupt(out _))
                {
                    Assert.True(
                        halted.Elapsed < stallTimeout,
                        $"stall: halted {halted.Elapsed.TotalSeconds:F0} s with {_transmit.Count} bytes to send, "
                        + $"{Received.Count} received, IER 0x{_ier:x2}, IIR 0x{In(Serial16550.InterruptIdentificationRegister):x2}");
                    _apic.WaitForWakeup(TimeSpan.FromMilliseconds(500));
                }
            }
        }

        /// <summary>serial8250_interrupt(): the port handler until IIR reports no interrupt.</summary>
        private void SerialInterrupt()
        {
            for (int pass = 0; pass < PassLimit; pass++)
            {
                byte iir = In(Serial16550.InterruptIdentificationRegister);
                if ((iir & Serial16550.IirNoInterrupt) != 0)
                {
                    return;
                }

                HandleIrq();
            }
        }

        /// <summary>serial8250_handle_irq(): receive, modem status, then transmit if THRE and IER.THRI.</summary>
        private void HandleIrq()
        {
            byte lsr = In(Serial16550.LineStatusRegister);
            if ((lsr & (Serial16550.LsrDataReady | Serial16550.LsrBreak)) != 0)
            {
                int max = 256;
                do
                {
                    Received.Add(In(Serial16550.DataRegister));
                    lsr = In(Serial16550.LineStatusRegister);
                }
                while ((lsr & (Serial16550.LsrDataReady | Serial16550.LsrBreak)) != 0 && --max > 0);
            }

            In(Serial16550.ModemStatusRegister);
            if ((lsr & Serial16550.LsrTransmitterHoldingEmpty) != 0 && (_ier & IerThri) != 0)
            {
                TransmitChars();
            }
        }

        /// <summary>serial8250_tx_chars(): up to tx_loadsz bytes; __stop_tx() once the buffer is empty.</summary>
        private void TransmitChars()
        {
            for (int count = TxLoadSize; count > 0 && _transmit.Count > 0; count--)
            {
                Out(Serial16550.DataRegister, _transmit.Dequeue());
            }

            if (_transmit.Count == 0)
            {
                _ier &= unchecked((byte)~IerThri);
                Out(Serial16550.InterruptEnableRegister, _ier);
            }
        }

        private byte In(int register)
        {
            Span<byte> data = stackalloc byte[1];
            _uart.Read((ushort)register, data);
            return data[0];
        }

        private void Out(int register, byte value) => _uart.Write((ushort)register, [value]);
    }
}
