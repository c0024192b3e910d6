namespace SharpVisor.Machine.CpuTemplates;

/// <summary>A machine whose accelerator applies a <see cref="CpuTemplate"/> to the vCPUs it creates.</summary>
public interface ICpuTemplateMachine
{
    /// <summary>
    /// The template; set before the vCPUs are created. A vCPU whose accelerator lacks a CPUID leaf
    /// or an MSR the template names is not created (the error says which).
    /// </summary>
    CpuTemplate? CpuTemplate { get; set; }
}
