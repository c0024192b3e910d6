using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Migration;
using SharpVisor.Kvm;
using SharpVisor.Machine;
using SharpVisor.Machine.Snapshots;
using SharpVisor.Memory;

namespace SharpVisor.Host.Vmm;

/// <summary>Live migration of the machine (docs/migration.md): the source's pre-copy and the destination's receive.</summary>
public sealed partial class VirtualMachineMonitor
{
    /// <summary>"SVMIGR" + version: the first bytes of a hello.</summary>
    public const string MigrationMagic = MigrationProtocol.Magic;

    public const uint MigrationProtocolVersion = MigrationProtocol.Version;

    private const int PagesPerFrame = 256;
    private const ulong ZeroPageFlag = 1UL << 63;

    /// <summary>
    /// Migrates this running machine over <paramref name="stream"/>: hello, configuration, pre-copy
    /// rounds of the dirty pages, then pause, the last dirty pages and the state, and once the
    /// destination is ready a commit. On success the machine is left paused for the caller to stop
    /// (it must never run again); on any failure it is resumed as it was and
    /// <see cref="MigrationException"/> says why in one line.
    /// </summary>
    public MigrationResult MigrateTo(Stream stream, MigrationOptions options, Action<string> progress)
    {
        try
        {
            return PreCopy(stream, options, progress);
        }
        catch (IOException e)
        {
            throw new MigrationException($"the connection to the destination failed: {e.Message}", e);
        }
    }

    private MigrationResult PreCopy(Stream stream, MigrationOptions options, Action<string> progress)
    {
        RequireSnapshotSupport();
        if (IsPaused)
        {
            throw new MigrationException("the domain is paused; unpause it before migrating (pre-copy needs it running)");
        }

        var tracking = (IDirtyPageTracking)_machine;
        DirtyPageLog log = _memory.DirtyLog!;
        var channel = new MigrationChannel(stream);
        var total = Stopwatch.StartNew();
        var hello = new SnapshotWriter();
        hello.Write(MigrationMagic);
        hello.Write(MigrationProtocolVersion);
        hello.Write(CpuIdentity());
        hello.Write(_memory.RamSize);
        hello.Write(Configuration.Name ?? "");
        channel.Send(MigrationFrameType.Hello, hello.ToArray());
        channel.Send(MigrationFrameType.Config, SnapshotConfigurationBytes());
        channel.Flush();
        channel.Expect(MigrationFrameType.Accept);

        // What the pause needs is made now: the page frame buffer, the state's checksums.
        byte[] frame = new byte[4 + (PagesPerFrame * (8 + (int)MemoryRegion.PageSize))];
        SnapshotFile.PrepareChecksums();

        // Round 1 sends every page; each later round what the guest wrote meanwhile.
        tracking.FetchDirtyPages();
        log.MarkAll();
        ulong[] dirty = log.FetchAndClear();
        long pagesSent = 0;
        int round = 0;
        double bandwidth = 0; // bytes per second, measured
        while (true)
        {
            round++;
            var clock = Stopwatch.StartNew();
            long before = channel.BytesSent;
            long count = SendPages(channel, log, dirty, frame);
            channel.Flush();
            double seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-6);
            long bytes = channel.BytesSent - before;
            bandwidth = bytes / seconds;
            pagesSent += count;
            dirty = tracking.FetchDirtyPages();
            long dirtyPages = DirtyPageLog.CountPages(dirty);
            double expectedMs = dirtyPages * (double)MemoryRegion.PageSize / Math.Max(bandwidth, 1) * 1000;
            progress($"round {round}: sent {count} pages ({bytes / 1048576.0:0.0} MiB) in {seconds * 1000:0} ms at {bandwidth / 1048576.0:0.0} MiB/s; dirtied {dirtyPages} pages ({dirtyPages * 4096.0 / 1048576.0 / seconds:0.0} MiB/s); expected downtime {expectedMs:0} ms");
            if (expectedMs <= options.DowntimeTarget.TotalMilliseconds || round >= options.MaxRounds)
            {
                break;
            }
        }

        // Stop-and-copy, timed per phase (docs/migration.md, "Downtime"): the pause is what the guest feels.
        var downtime = Stopwatch.StartNew();
        var phases = new StopAndCopyPhases();
        if (!Pause(TimeSpan.FromSeconds(10)))
        {
            Resume();
            throw new MigrationException("the vCPUs did not stop within 10 s");
        }

        // Each phase ends where the next begins (one clock read per boundary), so the phases add
        // up to the downtime even when the thread is descheduled between two of them.
        TimeSpan mark = TimeSpan.Zero;
        TimeSpan Lap()
        {
            TimeSpan now = downtime.Elapsed;
            TimeSpan lap = now - mark;
            mark = now;
            return lap;
        }

        phases.Pause = Lap();
        try
        {
            ulong[] last = tracking.FetchDirtyPages();
            for (int i = 0; i < last.Length; i++)
            {
                last[i] |= dirty[i];
            }

            phases.DirtyFetch = Lap();
            long lastCount = SendPages(channel, log, last, frame);
            pagesSent += lastCount;
            phases.LastPages = Lap();
            byte[] state = MachineStateBytes();
            phases.State = Lap();
            channel.Send(MigrationFrameType.State, state);
            channel.Flush();
            byte[] ready = channel.Expect(MigrationFrameType.Ready);
            phases.Ready = Lap();
            phases.DestinationLoad = ReadReadyLoadTime(ready);
            channel.Send(MigrationFrameType.Commit, ReadOnlySpan<byte>.Empty);
            channel.Flush();
            downtime.Stop();
            phases.Commit = Lap();
            progress($"stop-and-copy: {lastCount} pages and the device state ({state.Length / 1024.0:0.0} KiB); the destination was ready after {downtime.Elapsed.TotalMilliseconds:0} ms paused");
            progress($"stop-and-copy phases: {phases.Describe()}");
            return new MigrationResult(round + 1, pagesSent, channel.BytesSent, total.Elapsed, downtime.Elapsed) { Phases = phases };
        }
        catch
        {
            Resume();
            throw;
        }
    }

    /// <summary>The destination's state-load time a Ready frame carries (microseconds, u64 LE); null from a peer that sent none.</summary>
    private static TimeSpan? ReadReadyLoadTime(byte[] ready) =>
        ready.Length >= 8 ? TimeSpan.FromMicroseconds(Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(ready), (ulong)TimeSpan.FromHours(1).TotalMicroseconds)) : null;

    /// <summary>
    /// The destination's side: reads the hello and configuration, builds the machine here (the
    /// files it names must exist: refused with one line otherwise, sent back to the source too),
    /// fills its RAM from the pages and loads the state. Returns the machine ready to
    /// <see cref="Run"/> once the source committed; anything else disposes it and throws
    /// <see cref="MigrationException"/>.
    /// </summary>
    public static VirtualMachineMonitor ReceiveMigration(Stream stream, Func<MachineConfiguration, MachineConfiguration>? adjust = null)
    {
        var channel = new MigrationChannel(stream);
        VirtualMachineMonitor? vmm = null;
        try
        {
            var hello = new SnapshotReader("hello", channel.Expect(MigrationFrameType.Hello));
            string cpu;
            ulong ramSize;
            try
            {
                if (hello.ReadString() != MigrationMagic)
                {
                    throw new SnapshotException("not a SharpVisor migration");
                }

                uint version = hello.ReadUInt32();
                if (version != MigrationProtocolVersion)
                {
                    throw new SnapshotException($"migration protocol version {version} is not supported (this build speaks version {MigrationProtocolVersion})");
                }

                cpu = hello.ReadString();
                ramSize = hello.ReadUInt64();
                hello.ReadString();
            }
            catch (SnapshotException e)
            {
                throw Refuse(channel, e.Message);
            }

            MachineConfiguration configuration = ReadMigrationConfiguration(channel.Expect(MigrationFrameType.Config), out bool hasVirtioConsole);
            if (MissingFile(configuration) is { } missing)
            {
                throw Refuse(channel, missing);
            }

            if (hasVirtioConsole)
            {
                configuration = configuration with { VirtioConsoleOutput = Stream.Null };
            }

            configuration = adjust?.Invoke(configuration) ?? configuration;
            try
            {
                vmm = Create(configuration);
                vmm.RequireSnapshotSupport();
            }
            catch (Exception e) when (e is not MigrationException and not OutOfMemoryException)
            {
                throw Refuse(channel, $"cannot build the machine here: {e.Message}");
            }

            if (vmm.CpuIdentity() != cpu)
            {
                throw Refuse(channel, $"the CPU differs (source: {cpu}; here: {vmm.CpuIdentity()})");
            }

            if (vmm._memory.RamSize != ramSize)
            {
                throw Refuse(channel, $"the source has {ramSize} bytes of RAM, the machine built here {vmm._memory.RamSize}");
            }

            SnapshotFile.PrepareChecksums(); // before the source pauses, not while it waits for Ready
            channel.Send(MigrationFrameType.Accept, ReadOnlySpan<byte>.Empty);
            channel.Flush();
            DirtyPageLog log = vmm._memory.DirtyLog!;
            var loadClock = new Stopwatch();
            while (true)
            {
                (MigrationFrameType type, byte[] payload) = channel.Receive();
                if (type == MigrationFrameType.Pages)
                {
                    vmm.ApplyPages(log, payload);
                    continue;
                }

                if (type != MigrationFrameType.State)
                {
                    throw new MigrationException($"the source sent {type} where pages or the state were due");
                }

                loadClock.Restart();
                try
                {
                    SnapshotFile state = SnapshotFile.Parse(payload);
                    foreach (ISnapshotable part in vmm.SnapshotParts())
                    {
                        state.Load(part);
                    }
                }
                catch (SnapshotException e)
                {
                    throw Refuse(channel, $"cannot load the state: {e.Message}");
                }

                break;
            }

            // Ready carries how long the state took to load here, for the source's phase line.
            byte[] ready = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(ready, (ulong)loadClock.Elapsed.TotalMicroseconds);
            channel.Send(MigrationFrameType.Ready, ready);
            channel.Flush();
            channel.Expect(MigrationFrameType.Commit);
            vmm.Devices.NotifyAllQueues();
            vmm.AnnounceNetworkInterfaces();
            return vmm;
        }
        catch
        {
            vmm?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// After a migration: tells the network where the guest's MACs are now, as QEMU's self-announce
    /// does — the VMM (not the guest) sends a RARP broadcast from each NIC's MAC on its TAP, three
    /// times (50 and 100 ms apart, off the caller's thread), so bridges and switches move the MAC to
    /// this port. The guest's IP addresses are not announced (no gratuitous ARP: the VMM does not
    /// know them). Returns the NICs announced.
    /// </summary>
    public int AnnounceNetworkInterfaces()
    {
        var nics = Devices.Devices.Select(d => d.Device).OfType<SharpVisor.Devices.Virtio.VirtioNetDevice>().ToList();
        if (nics.Count == 0)
        {
            return 0;
        }

        var thread = new Thread(() =>
        {
            foreach (int delay in (int[])[0, 50, 100])
            {
                Thread.Sleep(delay);
                foreach (SharpVisor.Devices.Virtio.VirtioNetDevice nic in nics)
                {
                    try
                    {
                        nic.Tap.Write(RarpAnnouncement(MacAddress.Parse(nic.MacAddress).ToBytes()));
                    }
                    catch (ObjectDisposedException)
                    {
                        return; // the machine went away meanwhile
                    }
                }
            }
        })
        { Name = "vmm-announce", IsBackground = true };
        thread.Start();
        return nics.Count;
    }

    /// <summary>A RARP "reverse request" from <paramref name="mac"/> to everyone (QEMU's announce frame), behind the TAP's virtio-net header.</summary>
    public static byte[] RarpAnnouncement(ReadOnlySpan<byte> mac)
    {
        byte[] frame = new byte[SharpVisor.Devices.Virtio.VirtioNetDevice.HeaderSize + 60];
        Span<byte> ethernet = frame.AsSpan(SharpVisor.Devices.Virtio.VirtioNetDevice.HeaderSize);
        ethernet[..6].Fill(0xFF);
        mac.CopyTo(ethernet[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(ethernet[12..], 0x8035); // RARP
        BinaryPrimitives.WriteUInt16BigEndian(ethernet[14..], 1); // Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(ethernet[16..], 0x0800); // IPv4
        ethernet[18] = 6;
        ethernet[19] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(ethernet[20..], 3); // reverse request
        mac.CopyTo(ethernet[22..]); // sender hardware address; sender IP 0
        mac.CopyTo(ethernet[32..]); // target hardware address; target IP 0
        return frame;
    }

    /// <summary>The configuration a Config frame carries (the snapshot's <c>machine</c> section).</summary>
    public static MachineConfiguration ReadMigrationConfiguration(byte[] payload, out bool hasVirtioConsole) =>
        MigrationProtocol.ReadConfiguration(payload, out hasVirtioConsole);

    /// <summary>The first file the configuration names that is not here (a disk on a path the destination does not share), as a message; null when all are.</summary>
    public static string? MissingFile(MachineConfiguration configuration) => MigrationProtocol.MissingFile(configuration);

    private static MigrationException Refuse(MigrationChannel channel, string reason)
    {
        try
        {
            channel.Send(MigrationFrameType.Refuse, reason);
            channel.Flush();
        }
        catch (IOException)
        {
            // The source is gone already; the reason stays in this side's error.
        }

        return new MigrationException(reason);
    }

    private byte[] SnapshotConfigurationBytes() => SaveConfiguration();

    /// <summary>The paused machine's parts as a state file (no configuration, no memory: those went before).</summary>
    private byte[] MachineStateBytes()
    {
        var file = new SnapshotFile();
        foreach (ISnapshotable part in SnapshotParts())
        {
            file.Add(part);
        }

        using var buffer = new MemoryStream();
        file.WriteTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Sends the pages set in <paramref name="bitmap"/> in frames of <see cref="PagesPerFrame"/>; all-zero pages go as a flag without data.</summary>
    private unsafe long SendPages(MigrationChannel channel, DirtyPageLog log, ulong[] bitmap, byte[] frame)
    {
        int inFrame = 0;
        int used = 4;
        long count = 0;
        foreach (ulong page in DirtyPageLog.PagesIn(bitmap))
        {
            ulong address = log.AddressOf(page);
            ReadOnlySpan<byte> data = _memory.GetSpan(address, (int)MemoryRegion.PageSize);
            bool zero = data.IndexOfAnyExcept((byte)0) < 0;
            BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(used), page | (zero ? ZeroPageFlag : 0));
            used += 8;
            if (!zero)
            {
                data.CopyTo(frame.AsSpan(used));
                used += (int)MemoryRegion.PageSize;
            }

            count++;
            if (++inFrame == PagesPerFrame)
            {
                Flush();
            }
        }

        Flush();
        return count;

        void Flush()
        {
            if (inFrame == 0)
            {
                return;
            }

            BinaryPrimitives.WriteInt32LittleEndian(frame, inFrame);
            channel.Send(MigrationFrameType.Pages, frame.AsSpan(0, used));
            inFrame = 0;
            used = 4;
        }
    }

    /// <summary>Writes a Pages frame's pages into RAM; every index and length is checked first (the source is a peer, not trusted).</summary>
    private void ApplyPages(DirtyPageLog log, byte[] payload)
    {
        if (payload.Length < 4)
        {
            throw new MigrationException("a pages frame is truncated");
        }

        int count = BinaryPrimitives.ReadInt32LittleEndian(payload);
        int at = 4;
        for (int i = 0; i < count; i++)
        {
            if (at + 8 > payload.Length)
            {
                throw new MigrationException("a pages frame is truncated");
            }

            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(at));
            at += 8;
            ulong page = word & ~ZeroPageFlag;
            if (page >= log.PageCount)
            {
                throw new MigrationException($"the source sent page {page}, beyond the {log.PageCount} pages of RAM");
            }

            Span<byte> target = _memory.GetSpan(log.AddressOf(page), (int)MemoryRegion.PageSize);
            if ((word & ZeroPageFlag) != 0)
            {
                target.Clear();
                continue;
            }

            if (at + (int)MemoryRegion.PageSize > payload.Length)
            {
                throw new MigrationException("a pages frame is truncated");
            }

            payload.AsSpan(at, (int)MemoryRegion.PageSize).CopyTo(target);
            at += (int)MemoryRegion.PageSize;
        }

        if (at != payload.Length)
        {
            throw new MigrationException("a pages frame has bytes after its last page");
        }
    }
}
