namespace SharpVisor.Boot.Tests;
