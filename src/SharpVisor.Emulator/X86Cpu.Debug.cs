using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>
/// The debug machinery of system mode: hardware breakpoints (DR0-DR3 with DR7's enables, lengths
/// and kinds; DR6's B0-B3), single-stepping (DR6.BS), general detect (DR6.BD) and RFLAGS.RF.
/// While any of them can act, <see cref="Run"/> steps one instruction at a time through
/// <see cref="DebugStep"/>; otherwise the blocks run unchecked at full speed.
/// </summary>
public sealed partial class X86Cpu
{
    internal const ulong Dr6BreakpointHits = 0xF;
    internal const ulong Dr6DebugRegisterAccess = 1UL << 13;
    internal const ulong Dr6SingleStep = 1UL << 14;
    internal const ulong Dr7GeneralDetect = 1UL << 13;

    private const int BreakpointExecute = 0;
    private const int BreakpointWrite = 1;
    private const int BreakpointReadWrite = 3;

    // DR7 enables a breakpoint (L0-L3, G0-G3); data breakpoints watch their pages (no TLB entry there).
    private bool _breakpointsEnabled;
    private bool _dataBreakpointsEnabled;

    // Set during one DebugStep: the B0-B3 data-breakpoint hits of the instruction, whether it began a
    // MOV SS/POP SS shadow, whether it loaded RF (IRET), and #DB traps held back by a MOV SS shadow.
    private ulong _dataBreakpointHits;
    private bool _movSsShadowStarted;
    private bool _resumeFlagLoaded;
    private ulong _heldDebugTraps;

    /// <summary>Whether the next instruction must go through <see cref="DebugStep"/>.</summary>
    private bool DebugStepNeeded
    {
        // Read between every two blocks: the profile showed the getter as a call.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _breakpointsEnabled || (_flags & (RflagsBits.Trap | RflagsBits.Resume)) != 0 || _heldDebugTraps != 0;
    }

    /// <summary>Recomputes what DR7 enables after a debug-register write, RESET, INIT or a state load.</summary>
    private void RefreshDebugState()
    {
        bool data = false;
        for (int n = 0; n < 4; n++)
        {
            data |= BreakpointEnabled(n) && BreakpointKind(n) is BreakpointWrite or BreakpointReadWrite;
        }

        _breakpointsEnabled = (_dr[7] & 0xFF) != 0;
        _dataBreakpointsEnabled = data;
        _heldDebugTraps = 0;

        // Drop every translation so the watched pages (see TranslatePage) lose their TLB entries.
        _mmu.FlushAll();
        FlushJumpCache();
    }

    private bool BreakpointEnabled(int n) => ((_dr[7] >> (n * 2)) & 3) != 0;

    private int BreakpointKind(int n) => (int)((_dr[7] >> (16 + (n * 4))) & 3);

    /// <summary>DR7's LENn: 1, 2, 8 or 4 bytes (encodings 0, 1, 2, 3).</summary>
    private ulong BreakpointLength(int n) => ((_dr[7] >> (18 + (n * 4))) & 3) switch
    {
        0 => 1,
        1 => 2,
        2 => 8,
        _ => 4,
    };

    private ulong BreakpointAddress(int n)
    {
        ulong address = _is64 ? _dr[n] : (uint)_dr[n];
        return address & ~(BreakpointLength(n) - 1); // the processor ignores the low bits
    }

    /// <summary>The B0-B3 bits of the enabled instruction breakpoints at <paramref name="linear"/>.</summary>
    private ulong ExecuteBreakpointHits(ulong linear)
    {
        ulong hits = 0;
        for (int n = 0; n < 4; n++)
        {
            if (BreakpointEnabled(n) && BreakpointKind(n) == BreakpointExecute && (_is64 ? _dr[n] : (uint)_dr[n]) == linear)
            {
                hits |= 1UL << n;
            }
        }

        return hits;
    }

    /// <summary>
    /// Called for every data access while data breakpoints are enabled (their pages have no TLB
    /// entries, so every access comes through the slow path): notes the breakpoints it hits.
    /// </summary>
    private void CheckDataBreakpoints(ulong linear, int size, bool write)
    {
        for (int n = 0; n < 4; n++)
        {
            int kind = BreakpointKind(n);
            if (!BreakpointEnabled(n) || !(kind == BreakpointReadWrite || (kind == BreakpointWrite && write)))
            {
                continue;
            }

            ulong start = BreakpointAddress(n);
            ulong end = start + BreakpointLength(n);
            if (linear < end && start < linear + (ulong)size)
            {
                _dataBreakpointHits |= 1UL << n;
            }
        }
    }

    /// <summary>True when the page of <paramref name="linear"/> holds a data breakpoint (its TLB entry is dropped after each fill).</summary>
    private bool IsWatchedPage(ulong linear)
    {
        for (int n = 0; n < 4; n++)
        {
            if (BreakpointEnabled(n) && BreakpointKind(n) is BreakpointWrite or BreakpointReadWrite
                && (BreakpointAddress(n) & PageMask) == (linear & PageMask))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>MOV to or from a debug register while DR7.GD is set: a #DB fault with DR6.BD, GD cleared (so the handler may use them).</summary>
    private void CheckGeneralDetect()
    {
        if ((_dr[7] & Dr7GeneralDetect) != 0)
        {
            _dr[7] &= ~Dr7GeneralDetect;
            _dr[6] |= Dr6DebugRegisterAccess;
            throw new CpuException(ExceptionVector.Debug);
        }
    }

    /// <summary>MOV SS and POP SS: #DB traps of this instruction wait until after the next one (SDM 6.8.3).</summary>
    internal void BeginMovSsShadow()
    {
        BeginInterruptShadow();
        _movSsShadowStarted = true;
    }

    /// <summary>
    /// Runs one instruction under the debug machinery: an enabled instruction breakpoint at RIP is a
    /// #DB fault (unless RF is set); then the instruction; then its #DB traps — data breakpoints
    /// hit (B0-B3) and single-step (BS, when TF was set as it began) — as one #DB, unless a MOV SS
    /// or POP SS holds them until after the next instruction. A completed instruction clears RF
    /// (unless it loaded it: IRET). True when the instruction halted.
    /// </summary>
    private bool DebugStep()
    {
        if (_breakpointsEnabled && (_flags & RflagsBits.Resume) == 0)
        {
            ulong linear = _is64 ? _rip : (uint)(_segs[SegCs].Base + _rip);
            ulong hits = ExecuteBreakpointHits(linear);
            if (hits != 0)
            {
                _dr[6] = (_dr[6] & ~Dr6BreakpointHits) | hits;
                RaiseEvent((byte)ExceptionVector.Debug, null, EventKind.Debug, _rip, _rip);
                return false;
            }
        }

        bool singleStep = (_flags & RflagsBits.Trap) != 0;
        _dataBreakpointHits = 0;
        _movSsShadowStarted = false;
        _resumeFlagLoaded = false;
        long limit = _runLimit;
        _runLimit = _instructions + 1;
        try
        {
            ExecuteBlock(LookupBlock());
        }
        finally
        {
            _runLimit = limit;
        }

        if (!_resumeFlagLoaded)
        {
            _flags &= ~RflagsBits.Resume;
        }

        if (_halted)
        {
            return true;
        }

        ulong traps = _heldDebugTraps | _dataBreakpointHits | (singleStep ? Dr6SingleStep : 0);
        if (_movSsShadowStarted)
        {
            _heldDebugTraps = traps;
            return false;
        }

        _heldDebugTraps = 0;
        if (traps != 0)
        {
            _dr[6] = (_dr[6] & ~Dr6BreakpointHits) | traps;
            RaiseEvent((byte)ExceptionVector.Debug, null, EventKind.Debug, _rip, _rip);
        }

        return false;
    }
}
