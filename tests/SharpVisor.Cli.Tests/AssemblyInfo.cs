namespace SharpVisor.Cli.Tests;
