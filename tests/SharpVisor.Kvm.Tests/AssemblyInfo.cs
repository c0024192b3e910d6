namespace SharpVisor.Kvm.Tests;
