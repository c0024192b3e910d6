using Xunit.Abstractions;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// Differential testing against the host CPU. The test run uses a reduced number of cases;
/// SHARPVISOR_DIFFTEST_CASES=N runs N cases spread over all families (see docs/emulator.md),
/// SHARPVISOR_DIFFTEST_SEED picks the run seed and SHARPVISOR_DIFFTEST_REPRO=family:seed:index
/// re-runs one case. SHARPVISOR_DIFFTEST_PROGRESS=FILE appends a progress line per batch and
/// a summary line (with reproducers) per family to FILE, and SHARPVISOR_DIFFTEST_FAMILY=NAME spends
/// all the cases on one family (the others return at once): scripts/emulator-diff.sh uses them.
/// </summary>
public sealed class DifferentialTests
{
    private const int ReducedCasesPerFamily = 300;

    private readonly ITestOutputHelper _output;

    public DifferentialTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public static IEnumerable<object[]> Families() => DiffGenerator.FamilyNames.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(Families))]
    public void EmulatorMatchesHostCpu(string family)
    {
        string? only = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_FAMILY");
        if (only is not null && only != family)
        {
            return;
        }

        (ulong seed, int perFamily) = Settings(only is not null);
        string? progressFile = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_PROGRESS");
        Action<DiffReport>? progress = progressFile is null
            ? null
            : r =>
            {
                if (r.Cases % 10_000 == 0)
                {
                    File.AppendAllText(progressFile, $"progress {family}: {r.Cases}/{perFamily} cases, {r.Mismatches} mismatches, {r.Elapsed.TotalSeconds:F1} s\n");
                }
            };
        using var suite = new DiffSuite();
        DiffReport report = suite.Run(family, seed, perFamily, progress: progress);
        if (progressFile is not null)
        {
            File.AppendAllText(progressFile, $"summary {report.Summary(family)}\n" + string.Concat(report.Failures.Select(f => $"mismatch {f}\n")));
        }

        _output.WriteLine(report.Format(family));
        foreach (string d in report.Diagnostics.Take(10))
        {
            _output.WriteLine(d);
        }

        Assert.True(report.Mismatches == 0, report.Format(family));
        Assert.True(report.Skipped * 10 <= report.Cases, $"too many skipped cases: {report.Summary(family)}");
    }

    /// <summary>
    /// The same cases with tier 1 forced on every block (<see cref="ExecutionTier.Always"/>): the
    /// translated code must agree with the host exactly as the interpreter does.
    /// </summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void TranslatedCodeMatchesHostCpu(string family)
    {
        string? only = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_FAMILY");
        if (only is not null && only != family)
        {
            return;
        }

        (ulong seed, int perFamily) = Settings(only is not null);
        using var suite = new DiffSuite(ExecutionTier.Always);
        DiffReport report = suite.Run(family, seed, perFamily);
        _output.WriteLine(report.Format(family));
        _output.WriteLine($"tier-1 instructions: {suite.TranslatedInstructions}");
        Assert.True(report.Mismatches == 0, report.Format(family));
        Assert.True(suite.TranslatedInstructions > 0, $"{family}: no instruction ran in tier-1 code");
    }

    [Fact]
    public void ReproduceOneCase()
    {
        string? repro = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_REPRO");
        if (repro is null)
        {
            return;
        }

        string[] parts = repro.Split(':');
        using var suite = new DiffSuite();
        ulong seed = Convert.ToUInt64(parts[1].Replace("0x", ""), 16);
        int index = int.Parse(parts[2]);
        _output.WriteLine(suite.Explain(DiffGenerator.Generate(parts[0], seed, index)));
        DiffReport report = suite.Run(parts[0], seed, 1, index);
        _output.WriteLine(report.Format(parts[0]));
        Assert.Equal(0, report.Mismatches);
    }

    private static (ulong Seed, int PerFamily) Settings(bool oneFamily)
    {
        ulong seed = 0x5EED_0001;
        string? seedText = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_SEED");
        if (seedText is not null)
        {
            seed = Convert.ToUInt64(seedText.Replace("0x", ""), 16);
        }

        int perFamily = ReducedCasesPerFamily;
        string? casesText = Environment.GetEnvironmentVariable("SHARPVISOR_DIFFTEST_CASES");
        if (casesText is not null)
        {
            int families = oneFamily ? 1 : DiffGenerator.FamilyNames.Count;
            perFamily = Math.Max(1, (int.Parse(casesText) + families - 1) / families);
        }

        return (seed, perFamily);
    }
}
