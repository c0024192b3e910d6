namespace SharpVisor.Host.Tests;
