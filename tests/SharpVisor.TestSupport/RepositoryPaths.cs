using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>Where the checkout is, for tests that read or pack its files: the directory holding SharpVisor.sln above the test binaries.</summary>
public static class RepositoryPaths
{
    public static string Root
    {
        get
        {
            string? directory = AppContext.BaseDirectory;
            while (directory is not null && !File.Exists(Path.Combine(directory, "SharpVisor.sln")))
            {
                directory = Path.GetDirectoryName(directory);
            }

            Assert.True(directory is not null, $"no SharpVisor.sln above {AppContext.BaseDirectory}");
            return directory!;
        }
    }
}
