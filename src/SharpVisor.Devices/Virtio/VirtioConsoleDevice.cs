using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// virtio-console (virtio 1.x §5.3) with a single port — the guest's hvc0. Transmitted bytes go
/// to <see cref="Output"/>; bytes passed to <see cref="EnqueueInput"/> fill the guest's receive
/// buffers as they become available. The emergency-write register is offered for early output.
/// </summary>
public sealed class VirtioConsoleDevice : VirtioDevice
{
    public const ulong FeatureEmergencyWrite = 1UL << 2;
    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;

    /// <summary>Input held for the guest at most; older bytes are dropped beyond it, as a UART would overrun.</summary>
    public const int MaxPendingInput = 64 * 1024;

    private const int ConfigLength = 12;

    private readonly Queue<byte> _input = new();
    private readonly object _inputLock = new();

    public VirtioConsoleDevice(GuestMemory memory, Stream output, ushort queueSize = 64)
        : base(VirtioDeviceType.Console, memory, 2, queueSize, FeatureEmergencyWrite)
    {
        Output = output;
    }

    public Stream Output { get; }

    /// <summary>Guest output the host stream refused.</summary>
    public long DroppedOutputBytes { get; private set; }

    public override int ConfigSize => ConfigLength;

    public int PendingInput
    {
        get
        {
            lock (_inputLock)
            {
                return _input.Count;
            }
        }
    }

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        config.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], 1); // max_nr_ports
        config.Slice(offset, data.Length).CopyTo(data);
    }

    /// <summary>The driver writes a character to emerg_wr (offset 8) before its queues work.</summary>
    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        if (offset == 8 && data.Length >= 1 && HasFeature(FeatureEmergencyWrite))
        {
            lock (Lock)
            {
                try
                {
                    Output.WriteByte(data[0]);
                    Output.Flush();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    // The host side of the console went away: the byte is lost, the guest runs on.
                    Log?.Write($"{Name}: emergency output dropped: {e.Message}");
                }
            }
        }
    }

    /// <summary>Host keyboard input for the guest; delivered as receive buffers allow.</summary>
    public void EnqueueInput(ReadOnlySpan<byte> bytes)
    {
        lock (_inputLock)
        {
            foreach (byte b in bytes)
            {
                if (_input.Count == MaxPendingInput)
                {
                    _input.Dequeue();
                }

                _input.Enqueue(b);
            }
        }

        Notify(ReceiveQueue);
    }

    protected override void OnReset()
    {
        lock (_inputLock)
        {
            _input.Clear();
        }
    }

    protected override void ProcessQueue(Virtqueue queue)
    {
        if (queue.Index == TransmitQueue)
        {
            DrainQueue(queue, Transmit);
            return;
        }

        Receive(queue);
    }

    private uint Transmit(DescriptorChain chain)
    {
        byte[] data = new byte[(int)Math.Min(chain.ReadableLength, 1 << 20)];
        chain.CopyFromReadable(0, data);
        try
        {
            Output.Write(data);
            Output.Flush();
            IoCounters.AddWrite(data.Length);
        }
        catch (IOException e)
        {
            // The host side went away (a closed pipe): the guest's output is lost, the device lives on.
            DroppedOutputBytes += data.Length;
            Log?.Write($"{Name}: output dropped: {e.Message}");
        }

        return 0;
    }

    private void Receive(Virtqueue queue)
    {
        byte[] chunk;
        while (true)
        {
            lock (_inputLock)
            {
                if (_input.Count == 0)
                {
                    break;
                }
            }

            if (!queue.TryPop(out DescriptorChain chain))
            {
                break;
            }

            lock (_inputLock)
            {
                chunk = new byte[(int)Math.Min((ulong)_input.Count, chain.WritableLength)];
                for (int i = 0; i < chunk.Length; i++)
                {
                    chunk[i] = _input.Dequeue();
                }
            }

            int written = chain.CopyToWritable(0, chunk);
            queue.PushUsed(chain.Head, (uint)written);
            IoCounters.AddRead(written);
        }

        SignalIfNeeded(queue);
    }

    protected override void SaveDeviceState(SnapshotWriter w)
    {
        lock (_inputLock)
        {
            w.WriteBytes(_input.ToArray());
        }
    }

    protected override void LoadDeviceState(SnapshotReader r)
    {
        byte[] input = r.ReadBytes();
        if (input.Length > MaxPendingInput)
        {
            throw r.Invalid($"{input.Length} bytes of console input pending");
        }

        lock (_inputLock)
        {
            _input.Clear();
            foreach (byte b in input)
            {
                _input.Enqueue(b);
            }
        }
    }
}
