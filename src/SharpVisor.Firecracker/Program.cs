using SharpVisor.Host.Firecracker;

// out/firecracker: Firecracker's command line and pre-boot API, NativeAOT; InstanceStart execs the
// JIT VMM (VmmHandover), which runs the microVM in this same process.
StartupTrace.Mark("main");
return FirecrackerCommandLine.Run(args, new VmmHandover());
