namespace SharpVisor.Security.Tests;

public sealed class ProtectionPolicyTests
{
    [Fact]
    public void ParsesEveryItemAndPrintsTheCanonicalForm()
    {
        ProtectionPolicy p = ProtectionPolicy.Parse("msr-pin,kernel,measure=30,cr-pin,mode=log,measure-log=/tmp/m.log");
        Assert.True(p.Kernel);
        Assert.True(p.PinControlRegisters);
        Assert.True(p.PinMsrs);
        Assert.Equal(30, p.MeasureSeconds);
        Assert.Equal(ProtectionMode.Log, p.Mode);
        Assert.Equal("/tmp/m.log", p.MeasurementLogPath);
        Assert.Equal("kernel,cr-pin,msr-pin,measure=30,mode=log", p.ToString());
        Assert.Equal("kernel,mode=enforce", ProtectionPolicy.Parse("kernel").ToString());
    }

    [Theory]
    [InlineData("", "empty policy")]
    [InlineData("kernel,kernel", "'kernel' is given twice")]
    [InlineData("kernel,nx", "unknown item 'nx'")]
    [InlineData("kernel,measure=0", "measure is a whole number of seconds")]
    [InlineData("kernel,measure=1.5", "measure is a whole number of seconds")]
    [InlineData("kernel,measure=-3", "measure is a whole number of seconds")]
    [InlineData("kernel,measure", "measure is a whole number of seconds")]
    [InlineData("kernel,mode=strict", "mode is enforce or log, not 'strict'")]
    [InlineData("kernel=1", "'kernel' takes no value")]
    [InlineData("mode=log", "nothing to protect")]
    [InlineData("kernel,,cr-pin", "empty item")]
    [InlineData("kernel,measure-log=", "measure-log needs a file path")]
    public void BadValuesAreOneLineErrors(string text, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => ProtectionPolicy.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("--protect", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
