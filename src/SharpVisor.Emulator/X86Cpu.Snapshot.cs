using System.Runtime.Intrinsics;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Emulator;

/// <summary>
/// The core's whole architectural state for a snapshot: registers, segment caches, control and
/// debug registers, the MSRs it keeps, x87/MMX/SSE (the XSAVE components it implements), XCR0
/// and the event state (halted, NMI blocking, the STI/MOV SS shadow). Caches (blocks, TLB, shadow
/// page tables) are not state: loading drops them and the MMU reloads from CR0/CR3/CR4/EFER.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>Writes the state; call between <see cref="Run"/> calls on a parked vCPU.</summary>
    public void SaveState(SnapshotWriter w)
    {
        for (int i = 0; i < 16; i++)
        {
            w.Write(_regs[i]);
        }

        w.Write(_rip);
        w.Write(GetRflags());
        foreach (SegmentCache s in (ReadOnlySpan<SegmentCache>)[_segs[0], _segs[1], _segs[2], _segs[3], _segs[4], _segs[5], _ldtr, _tr])
        {
            w.Write(s.Base);
            w.Write(s.Limit);
            w.Write(s.Selector);
            w.Write(s.Attributes);
        }

        w.Write(_gdtBase);
        w.Write(_gdtLimit);
        w.Write(_idtBase);
        w.Write(_idtLimit);
        foreach (ulong v in (ReadOnlySpan<ulong>)[_cr0, _cr2, _cr3, _cr4, _cr8, _efer, _xcr0])
        {
            w.Write(v);
        }

        w.Write(_dr);
        foreach (ulong v in (ReadOnlySpan<ulong>)[_kernelGsBase, _star, _lstar, _cstar, _sfmask, _tscAux, _sysenterCs, _sysenterEsp, _sysenterEip, _pat, _apicBase, (ulong)_tscOffset, _miscEnable, _featureControl, _mtrrDefaultType])
        {
            w.Write(v);
        }

        // x87 and SSE: the FXSAVE image's contents, kept in the core's own representation.
        w.Write(_fcw);
        w.Write(_fsw);
        w.Write(_fpuTop);
        w.Write(_fpuValid);
        w.Write(_fop);
        w.Write(_fip);
        w.Write(_fdp);
        w.Write(_fcs);
        w.Write(_fds);
        for (int i = 0; i < 8; i++)
        {
            w.Write(_st[i].Significand);
            w.Write(_st[i].SignExponent);
        }

        w.Write(_mxcsr);
        for (int i = 0; i < 16; i++)
        {
            var x = Xmm(i).AsUInt64();
            w.Write(x.GetElement(0));
            w.Write(x.GetElement(1));
        }

        w.Write(_xinuse);

        w.Write(_halted);
        w.Write(_waitingForStartup);
        w.Write(_nmiBlocked);
        w.Write(NmiPending);
        w.Write(_shutdownReason ?? string.Empty);
        w.Write(_interruptShadowEnd >= _instructions ? _interruptShadowEnd - _instructions : -1L);
    }

    /// <summary>Loads what <see cref="SaveState"/> wrote; the caches are dropped and the MMU reloaded.</summary>
    public void LoadState(SnapshotReader r)
    {
        for (int i = 0; i < 16; i++)
        {
            _regs[i] = r.ReadUInt64();
        }

        _rip = r.ReadUInt64();
        SetRflags(r.ReadUInt64());
        var segments = new SegmentCache[8];
        for (int i = 0; i < segments.Length; i++)
        {
            segments[i] = new SegmentCache { Base = r.ReadUInt64(), Limit = r.ReadUInt32(), Selector = r.ReadUInt16(), Attributes = r.ReadUInt32() };
        }

        for (int i = 0; i < 6; i++)
        {
            _segs[i] = segments[i];
        }

        _ldtr = segments[6];
        _tr = segments[7];
        _gdtBase = r.ReadUInt64();
        _gdtLimit = r.ReadUInt16();
        _idtBase = r.ReadUInt64();
        _idtLimit = r.ReadUInt16();
        _cr0 = r.ReadUInt64();
        _cr2 = r.ReadUInt64();
        _cr3 = r.ReadUInt64();
        _cr4 = r.ReadUInt64();
        _cr8 = r.ReadUInt64() & 0xF;
        _efer = r.ReadUInt64();
        ulong xcr0 = r.ReadUInt64();
        if ((xcr0 & 1) == 0 || (xcr0 & ~CpuModel.SupportedXcr0) != 0)
        {
            throw r.Invalid($"XCR0 0x{xcr0:x} is not one this CPU supports (0x{CpuModel.SupportedXcr0:x})");
        }

        _xcr0 = xcr0;
        r.ReadUInt64Array(_dr.Length).CopyTo(_dr, 0);
        _kernelGsBase = r.ReadUInt64();
        _star = r.ReadUInt64();
        _lstar = r.ReadUInt64();
        _cstar = r.ReadUInt64();
        _sfmask = r.ReadUInt64();
        _tscAux = r.ReadUInt64();
        _sysenterCs = r.ReadUInt64();
        _sysenterEsp = r.ReadUInt64();
        _sysenterEip = r.ReadUInt64();
        _pat = r.ReadUInt64();
        _apicBase = r.ReadUInt64();
        _tscOffset = r.ReadInt64();
        _miscEnable = r.ReadUInt64();
        _featureControl = r.ReadUInt64();
        _mtrrDefaultType = r.ReadUInt64();

        _fcw = r.ReadUInt16();
        _fsw = r.ReadUInt16();
        _fpuTop = r.ReadInt32() & 7;
        _fpuValid = r.ReadByte();
        _fop = r.ReadUInt16();
        _fip = r.ReadUInt64();
        _fdp = r.ReadUInt64();
        _fcs = r.ReadUInt16();
        _fds = r.ReadUInt16();
        for (int i = 0; i < 8; i++)
        {
            _st[i] = new Float80(r.ReadUInt64(), r.ReadUInt16());
        }

        _mxcsr = r.ReadUInt32() & (_mxcsrMask | 0xFFFF);
        for (int i = 0; i < 16; i++)
        {
            Xmm(i) = Vector128.Create(r.ReadUInt64(), r.ReadUInt64()).AsByte();
        }

        _xinuse = r.ReadInt32();

        _halted = r.ReadBoolean();
        _waitingForStartup = r.ReadBoolean();
        _nmiBlocked = r.ReadBoolean();
        NmiPending = r.ReadBoolean();
        string shutdown = r.ReadString();
        _shutdownReason = shutdown.Length == 0 ? null : shutdown;
        long shadow = r.ReadInt64();
        _interruptShadowEnd = shadow >= 0 ? _instructions + shadow : -1;

        UpdateMode();
        if (!_mmu.LoadControlRegisters(_cr0, _cr3, _cr4, _efer))
        {
            throw r.Invalid($"CR3 0x{_cr3:x} points at invalid PAE page-directory-pointer entries");
        }

        _mmu.FlushAll();
        FlushCodeCache();
        RefreshDebugState();
        Platform?.WriteCr8(this, _cr8);
    }
}
