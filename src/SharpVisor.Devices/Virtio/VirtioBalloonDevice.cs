using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// virtio-balloon (virtio 1.x §5.5): the host sets a target in <c>num_pages</c>; the guest
/// inflates by handing page frame numbers on the inflate queue — their backing is given back to
/// the host through <see cref="GuestMemory.TryDiscard"/> (MADV_REMOVE on the memfd) — and
/// deflates on the deflate queue. With STATS_VQ the guest keeps one buffer of statistics on the
/// stats queue; <see cref="RequestStatistics"/> hands it back to ask for fresh numbers.
/// DEFLATE_ON_OOM lets the guest deflate under memory pressure.
/// </summary>
public sealed class VirtioBalloonDevice : VirtioDevice
{
    public const ulong FeatureStatsQueue = 1UL << 1;
    public const ulong FeatureDeflateOnOom = 1UL << 2;
    public const int InflateQueue = 0;
    public const int DeflateQueue = 1;
    public const int StatsQueue = 2;
    public const int PageShift = 12;
    public const int StatisticSize = 10;

    private const int ConfigLength = 8;

    private readonly Dictionary<ushort, ulong> _statistics = new();
    private uint _targetPages;
    private uint _actualPages;
    private DescriptorChain? _heldStats;

    /// <summary>A balloon offering the statistics queue and deflate-on-OOM as asked (both by default).</summary>
    public VirtioBalloonDevice(GuestMemory memory, ushort queueSize = 256, bool statistics = true, bool deflateOnOom = true)
        : base(VirtioDeviceType.Balloon, memory, 3, queueSize, (statistics ? FeatureStatsQueue : 0) | (deflateOnOom ? FeatureDeflateOnOom : 0))
    {
    }

    public override int ConfigSize => ConfigLength;

    public uint TargetPages
    {
        get
        {
            lock (Lock)
            {
                return _targetPages;
            }
        }
    }

    /// <summary>The balloon size the guest reports in <c>actual</c>.</summary>
    public uint ActualPages
    {
        get
        {
            lock (Lock)
            {
                return _actualPages;
            }
        }
    }

    /// <summary>Pages the guest inflated minus pages it deflated, as the device counted them.</summary>
    public long BalloonedPages { get; private set; }

    /// <summary>PFNs the guest passed that lie outside its memory (ignored).</summary>
    public long InvalidPages { get; private set; }

    /// <summary>The last statistics the guest sent, by tag (VIRTIO_BALLOON_S_*).</summary>
    public IReadOnlyDictionary<ushort, ulong> Statistics
    {
        get
        {
            lock (Lock)
            {
                return new Dictionary<ushort, ulong>(_statistics);
            }
        }
    }

    /// <summary>The host's request: the balloon should hold <paramref name="pages"/> 4 KiB pages.</summary>
    public void SetTargetPages(uint pages)
    {
        lock (Lock)
        {
            _targetPages = pages;
        }

        ConfigChanged();
    }

    /// <summary>Returns the held statistics buffer so the guest refills it; false when it holds none.</summary>
    public bool RequestStatistics()
    {
        lock (Lock)
        {
            if (_heldStats is null || !IsActive)
            {
                return false;
            }

            Virtqueue queue = Queues[StatsQueue];
            queue.PushUsed(_heldStats.Head, 0);
            _heldStats = null;
            SignalIfNeeded(queue);
            return true;
        }
    }

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        lock (Lock)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(config, _targetPages);
            BinaryPrimitives.WriteUInt32LittleEndian(config[4..], _actualPages);
        }

        config.Slice(offset, data.Length).CopyTo(data);
    }

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        lock (Lock)
        {
            Span<byte> actual = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(actual, _actualPages);
            for (int i = 0; i < data.Length; i++)
            {
                int o = offset + i - 4;
                if ((uint)o < 4)
                {
                    actual[o] = data[i];
                }
            }

            _actualPages = BinaryPrimitives.ReadUInt32LittleEndian(actual);
        }
    }

    protected override void OnReset()
    {
        _heldStats = null;
        _actualPages = 0;
    }

    protected override void ProcessQueue(Virtqueue queue)
    {
        switch (queue.Index)
        {
            case InflateQueue:
                DrainQueue(queue, chain => HandlePages(chain, inflate: true));
                break;
            case DeflateQueue:
                DrainQueue(queue, chain => HandlePages(chain, inflate: false));
                break;
            case StatsQueue when HasFeature(FeatureStatsQueue):
                ReceiveStatistics(queue);
                break;
        }
    }

    private uint HandlePages(DescriptorChain chain, bool inflate)
    {
        byte[] pfns = new byte[(int)Math.Min(chain.ReadableLength, 1 << 20) & ~3];
        chain.CopyFromReadable(0, pfns);

        // Coalesce runs of consecutive frames into one discard each; a chain's invalid runs are
        // reported in one line, so a guest cannot turn one descriptor into thousands of lines.
        var outcome = new PageRunOutcome();
        ulong runStart = 0;
        ulong runPages = 0;
        for (int i = 0; i <= pfns.Length; i += 4)
        {
            bool end = i == pfns.Length;
            ulong pfn = end ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(pfns.AsSpan(i));
            if (!end && runPages > 0 && pfn == runStart + runPages)
            {
                runPages++;
                continue;
            }

            if (runPages > 0)
            {
                Apply(runStart, runPages, inflate, ref outcome);
            }

            runStart = pfn;
            runPages = end ? 0UL : 1UL;
        }

        if (outcome.InvalidRuns > 0)
        {
            Log?.Write($"{Name}: {outcome.InvalidPages} PFNs in {outcome.InvalidRuns} runs (first 0x{outcome.FirstInvalidPfn:x}) are outside guest memory; ignored");
        }

        if (outcome.UnreleasedRuns > 0)
        {
            Log?.Write($"{Name}: could not release {outcome.UnreleasedPages} PFNs in {outcome.UnreleasedRuns} runs (first 0x{outcome.FirstUnreleasedPfn:x})");
        }

        return 0;
    }

    private void Apply(ulong firstPfn, ulong pages, bool inflate, ref PageRunOutcome outcome)
    {
        ulong address = firstPfn << PageShift;
        ulong length = pages << PageShift;
        if (!Memory.IsValid(address, length))
        {
            InvalidPages += (long)pages;
            if (outcome.InvalidRuns++ == 0)
            {
                outcome.FirstInvalidPfn = firstPfn;
            }

            outcome.InvalidPages += pages;
            return;
        }

        if (inflate)
        {
            if (!Memory.TryDiscard(address, length))
            {
                if (outcome.UnreleasedRuns++ == 0)
                {
                    outcome.FirstUnreleasedPfn = firstPfn;
                }

                outcome.UnreleasedPages += pages;
            }

            BalloonedPages += (long)pages;
        }
        else
        {
            // Deflated pages need nothing: they fault back in, zero-filled, when the guest touches them.
            BalloonedPages -= (long)pages;
        }
    }

    private void ReceiveStatistics(Virtqueue queue)
    {
        while (queue.TryPop(out DescriptorChain chain))
        {
            if (_heldStats is not null)
            {
                // The driver keeps a single buffer in flight; return any older one unread.
                queue.PushUsed(_heldStats.Head, 0);
            }

            byte[] data = new byte[(int)Math.Min(chain.ReadableLength, 64 * StatisticSize)];
            chain.CopyFromReadable(0, data);
            for (int at = 0; at + StatisticSize <= data.Length; at += StatisticSize)
            {
                _statistics[BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(at))] = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(at + 2));
            }

            _heldStats = chain;
        }

        SignalIfNeeded(queue);
    }

    /// <summary>What one inflate or deflate chain did wrong, summed for a single log line.</summary>
    private struct PageRunOutcome
    {
        public long InvalidRuns;
        public ulong InvalidPages;
        public ulong FirstInvalidPfn;
        public long UnreleasedRuns;
        public ulong UnreleasedPages;
        public ulong FirstUnreleasedPfn;
    }

    protected override int HeldChains(int index) => index == StatsQueue && _heldStats is not null ? 1 : 0;

    /// <summary>Target and actual size; the guest's statistics are asked for again after a restore.</summary>
    protected override void SaveDeviceState(SnapshotWriter w)
    {
        w.Write(_targetPages);
        w.Write(_actualPages);
        w.Write(BalloonedPages);
    }

    protected override void LoadDeviceState(SnapshotReader r)
    {
        _targetPages = r.ReadUInt32();
        _actualPages = r.ReadUInt32();
        BalloonedPages = r.ReadInt64();
    }
}
