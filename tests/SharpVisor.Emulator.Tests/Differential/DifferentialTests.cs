using Xunit.Abstractions;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// Differential testing against the host CPU. The test run uses a reduced number of cases;
/// SHARPVISOR_DIFFTEST_CASES=N runs N cases spread over all families (see docs/emulator.md),
/// SHARPVISOR_DIFFTEST_SEED picks the run seed and SHARPVISOR_DIFFTEST_REPRO=family:seed:index
/// re-runs one case.
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
        (ulong seed, int perFamily) = Settings();
        using var suite = new DiffSuite();
        DiffReport report = suite.Run(family, seed, perFamily);
        _output.WriteLine(report.Format(family));
        foreach (string d in report.Diagnostics.Take(10))
        {
            _output.WriteLine(d);
        }

        Assert.True(report.Mismatches == 0, report.Format(family));
        Assert.True(report.Skipped * 10 <= report.Cases, $"too many skipped cases: {report.Summary(family)}");
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

    private static (ulong Seed, int PerFamily) Settings()
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
            perFamily = Math.Max(1, int.Parse(casesText) / DiffGenerator.FamilyNames.Count);
        }

        return (seed, perFamily);
    }
}
