using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// The native side of the differential suite: compiles tests/native/difftest.c with gcc
/// (cached by source hash) and runs batches of cases in a child process that executes them
/// on the host CPU, catching faults.
/// </summary>
internal sealed class NativeHarness : IDisposable
{
    private const int CaseInSize = 4 + 4 + 8 + 4 + 4 + (18 * 8) + 512;
    private const int CaseOutSize = (4 * 4) + (4 * 8) + (18 * 8) + 512 + 8;
    private const int Chunk = 128;

    private readonly string _binary;
    private Process? _process;
    private Stream? _input;
    private Stream? _output;

    private NativeHarness(string binary)
    {
        _binary = binary;
    }

    /// <summary>The 8 bytes at <see cref="DiffCase.ExitSlot"/> in the harness process (its exit routine's address).</summary>
    public ulong ExitSlotValue { get; private set; }

    /// <summary>Starts the harness once to learn <see cref="ExitSlotValue"/>.</summary>
    public ulong QueryExitSlot()
    {
        if (_process is null)
        {
            Start();
        }

        return ExitSlotValue;
    }

    /// <summary>Builds (or reuses) the harness binary; throws with gcc's message when it cannot be built.</summary>
    public static NativeHarness Create()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "native", "difftest.c");
        if (!File.Exists(source))
        {
            throw new FileNotFoundException("difftest.c was not copied next to the test assembly", source);
        }

        string hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(source)))[..16].ToLowerInvariant();
        string directory = Path.Combine(Path.GetTempPath(), "sharpvisor-difftest");
        Directory.CreateDirectory(directory);
        string binary = Path.Combine(directory, $"difftest-{hash}");
        if (!File.Exists(binary))
        {
            string temporary = binary + $".{Environment.ProcessId}.tmp";
            var gcc = Process.Start(new ProcessStartInfo("gcc", ["-O2", "-Wall", "-o", temporary, source])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            if (gcc.ExitCode != 0)
            {
                throw new InvalidOperationException($"gcc failed to build the differential harness: {errors}");
            }

            File.Move(temporary, binary, overwrite: true);
        }

        return new NativeHarness(binary);
    }

    private void Start()
    {
        var info = new ProcessStartInfo(_binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(info)!;
        _input = _process.StandardInput.BaseStream;
        _output = _process.StandardOutput.BaseStream;
        _process.ErrorDataReceived += (_, e) => { };
        _process.BeginErrorReadLine();
        byte[] magic = new byte[8];
        _output.ReadExactly(magic);
        if (Encoding.ASCII.GetString(magic) != "SVDIFF01")
        {
            throw new InvalidOperationException("the differential harness did not start");
        }

        _output.ReadExactly(magic);
        ExitSlotValue = BitConverter.ToUInt64(magic);
    }

    private void Stop()
    {
        try
        {
            _input?.Dispose();
            if (_process is not null && !_process.WaitForExit(2000))
            {
                _process.Kill();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process?.Dispose();
        _process = null;
        _input = null;
        _output = null;
    }

    /// <summary>
    /// Runs <paramref name="cases"/> natively. A case that kills the harness process (which a
    /// correct harness never allows) yields a null result and the harness is restarted.
    /// </summary>
    public DiffResult?[] Run(IReadOnlyList<DiffCase> cases)
    {
        var results = new DiffResult?[cases.Count];
        int next = 0;
        while (next < cases.Count)
        {
            if (_process is null)
            {
                Start();
            }

            int start = next;
            Stream input = _input!;
            var writer = Task.Run(() =>
            {
                try
                {
                    using var buffered = new BufferedStream(input, 1 << 16);
                    for (int i = start; i < cases.Count; i++)
                    {
                        WriteCase(buffered, cases[i]);
                        if ((i & 63) == 63)
                        {
                            buffered.Flush();
                        }
                    }

                    buffered.Flush();
                }
                catch (IOException)
                {
                    // The harness died; the reader reports which case.
                }
            });

            try
            {
                for (; next < cases.Count; next++)
                {
                    results[next] = ReadResult(_output!, cases[next].InitialData());
                }
            }
            catch (EndOfStreamException)
            {
                results[next] = null;
                next++;
                Stop();
            }

            writer.Wait();
            if (next == cases.Count)
            {
                // The writer closed the pipe (disposing the buffered stream); start afresh next time.
                Stop();
            }
        }

        return results;
    }

    private static void WriteCase(Stream s, DiffCase c)
    {
        Span<byte> header = stackalloc byte[CaseInSize];
        header.Clear();
        BitConverter.TryWriteBytes(header[0..], 0x45534143u);
        BitConverter.TryWriteBytes(header[4..], (uint)c.Code.Length);
        BitConverter.TryWriteBytes(header[8..], c.MemorySeed);
        BitConverter.TryWriteBytes(header[16..], (uint)c.Patches.Count);
        BitConverter.TryWriteBytes(header[20..], 200u);
        for (int i = 0; i < 16; i++)
        {
            BitConverter.TryWriteBytes(header[(24 + (i * 8))..], c.Gpr[i]);
        }

        BitConverter.TryWriteBytes(header[(24 + 136)..], c.Rflags);
        c.Fx.CopyTo(header[(24 + 144)..]);
        s.Write(header);
        s.Write(c.Code);
        Span<byte> patch = stackalloc byte[4];
        foreach ((ushort offset, byte[] bytes) in c.Patches)
        {
            BitConverter.TryWriteBytes(patch, offset);
            BitConverter.TryWriteBytes(patch[2..], (ushort)bytes.Length);
            s.Write(patch);
            s.Write(bytes);
        }
    }

    private static DiffResult ReadResult(Stream s, byte[] initial)
    {
        byte[] raw = new byte[CaseOutSize];
        s.ReadExactly(raw);
        var r = new DiffResult
        {
            Outcome = (DiffOutcome)BitConverter.ToUInt32(raw, 4),
            Signal = (int)BitConverter.ToUInt32(raw, 8),
            Vector = BitConverter.ToUInt64(raw, 16),
            ErrorCode = BitConverter.ToUInt64(raw, 24),
            Cr2 = BitConverter.ToUInt64(raw, 32),
        };
        for (int i = 0; i < 16; i++)
        {
            r.Gpr[i] = BitConverter.ToUInt64(raw, 48 + (i * 8));
        }

        r.Rip = BitConverter.ToUInt64(raw, 48 + 128);
        r.Rflags = BitConverter.ToUInt64(raw, 48 + 136);
        r.Fx = raw.AsSpan(48 + 144, 512).ToArray();
        ulong changed = BitConverter.ToUInt64(raw, 48 + 144 + 512);
        r.Data = (byte[])initial.Clone();
        for (int c = 0; c < DiffCase.DataSize / Chunk; c++)
        {
            if ((changed & (1UL << c)) != 0)
            {
                s.ReadExactly(r.Data.AsSpan(c * Chunk, Chunk));
            }
        }

        return r;
    }

    public void Dispose() => Stop();
}
