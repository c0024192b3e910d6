#!/usr/bin/env bash
# Interactive boots of the default guest under a real pty (tmux), as a user at a terminal
# would run them: boot, wait for the shell prompt, type a command and check its answer, then
# leave the shell (the guest powers off). Fails when any boot stalls: no new terminal output
# for --stall seconds before the guest has powered off. The lines SharpVisor itself prints
# after the guest's first byte are counted too: an interactive console must not have any.
#
# Usage: scripts/pty-soak.sh [-n BOOTS] [--stall SECONDS] [--boot-timeout SECONDS]
#                            [--keys-during-boot] [--keep DIR] [-- EXTRA RUN OPTIONS...]
#   --keys-during-boot  also press Enter every 2 s while the guest boots (input racing output)
#   SHARPVISOR_CLI   the command to run (default: ./sharpvisor; the tests pass `dotnet .../sharpvisor.dll`)
# Prints one line per boot and a summary "pty-soak: N boots, N ok, N stalled, N failed".
# The soak (-n 50) takes a long time on a loaded machine; ./test.sh runs -n 3 (PtySoakTests).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"

boots=50
stall=120
boot_timeout=600
keep=""
keys_during_boot=0
extra=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        -n) boots="$2"; shift 2 ;;
        --stall) stall="$2"; shift 2 ;;
        --boot-timeout) boot_timeout="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        --keys-during-boot) keys_during_boot=1; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "pty-soak: unknown option $1" >&2; exit 2 ;;
    esac
done

command -v tmux >/dev/null || { echo "pty-soak: tmux is required (apt-get install tmux)" >&2; exit 2; }
eval "$("$root/scripts/build-guest.sh")"
cli="${SHARPVISOR_CLI:-$root/sharpvisor}"

work="${keep:-$(mktemp -d /tmp/pty-soak.XXXXXX)}"
mkdir -p "$work"
socket="sharpvisor-pty-soak-$$"
tmuxc() { tmux -L "$socket" -f /dev/null "$@"; }
cleanup() {
    tmuxc kill-server 2>/dev/null || true
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$socket"
    [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

# The log without carriage returns and escape sequences (busybox asks for the cursor position).
text() { tr -d '\r' <"$1" 2>/dev/null | sed -E $'s/\x1b\\[[0-9;?]*[A-Za-z]//g' || true; }

# How much the guest has said: the log without SharpVisor's own progress lines, which would
# otherwise hide a silent guest.
guest_size() { text "$1" | sed -E 's/\[sharpvisor\] [0-9]+ s: .*$//' | wc -c; }

ok=0
stalled=0
failed=0
for i in $(seq 1 "$boots"); do
    log="$work/boot-$i.log"
    status="$work/boot-$i.status"
    go="$work/boot-$i.go"
    rm -f "$log" "$status" "$go"
    : >"$log"

    # The pane waits for $go so that pipe-pane is attached before the first byte.
    run=$(printf '%q ' $cli run --kernel "$KERNEL" --initrd "$INITRD" --timeout "$boot_timeout" "${extra[@]}")
    tmuxc new-session -d -s "boot$i" -x 160 -y 48 \
        "while [ ! -e $go ]; do sleep 0.05; done; $run; echo \$? >$status; sleep 1"
    tmuxc pipe-pane -t "boot$i" -o "cat >>$log"
    touch "$go"

    started=$(date +%s)
    last_size=0
    last_change=$started
    phase=boot          # boot -> prompt -> answered -> exiting
    verdict=""
    while true; do
        sleep 1
        now=$(date +%s)
        current=$(guest_size "$log")
        if [ "$current" != "$last_size" ]; then
            last_size=$current
            last_change=$now
        fi

        if [ -s "$status" ]; then
            break
        fi

        content=$(text "$log")
        case "$phase" in
            boot)
                # The busybox shell's prompt ("/ # ") after the self-check.
                if sed -n '/^SELF-CHECK-END/,$p' <<<"$content" | grep -q '^/[^ ]* # '; then
                    tmuxc send-keys -t "boot$i" 'echo pty-soak-$((6*7))' Enter
                    phase=prompt
                elif [ "$keys_during_boot" = 1 ] && [ $((now % 2)) = 0 ]; then
                    tmuxc send-keys -t "boot$i" Enter
                fi
                ;;
            prompt)
                if grep -q '^pty-soak-42' <<<"$content"; then
                    tmuxc send-keys -t "boot$i" 'exit' Enter
                    phase=answered
                fi
                ;;
        esac

        if [ $((now - last_change)) -ge "$stall" ]; then
            # Does a key press get it going again? Then an interrupt (TX or RX) was lost.
            pid=$(tmuxc list-panes -t "boot$i" -F '#{pane_pid}' 2>/dev/null || true)
            before=$(guest_size "$log")
            tmuxc send-keys -t "boot$i" Enter
            sleep 5
            resumed=no
            [ "$(guest_size "$log")" -gt "$before" ] && resumed=yes
            verdict="STALL in phase $phase: no output for ${stall} s (pane pid ${pid:-?}); output after a key press: $resumed"
            break
        fi

        if [ $((now - started)) -ge $((boot_timeout + 60)) ]; then
            verdict="TIMEOUT in phase $phase"
            break
        fi
    done

    tmuxc kill-session -t "boot$i" 2>/dev/null || true
    content=$(text "$log")
    elapsed=$(( $(date +%s) - started ))
    # SharpVisor's own lines after the guest's first output (the first kernel line) on the terminal.
    # (A progress line may start mid-line, where the guest's output stopped.)
    first=$(grep -n -m1 -v -e '^\[sharpvisor' -e '^$' <<<"$content" | cut -d: -f1 || true)
    noise=0
    if [ -n "$first" ]; then
        noise=$(tail -n +"$first" <<<"$content" | grep -o '\[sharpvisor\] [0-9]* s: ' | wc -l || true)
    fi

    if [ -n "$verdict" ]; then
        [[ "$verdict" == STALL* ]] && stalled=$((stalled + 1)) || failed=$((failed + 1))
        echo "boot $i: $verdict after ${elapsed} s; last output: $(tail -c 200 <<<"$content" | tr '\n' '|')"
        cp "$log" "$work/failed-$i.log" 2>/dev/null || true
        [ -n "$keep" ] || { mkdir -p /tmp/pty-soak-failures; cp "$log" "/tmp/pty-soak-failures/$$-boot-$i.log"; }
    elif [ "$phase" != answered ] || [ "$(cat "$status")" != 0 ]; then
        failed=$((failed + 1))
        echo "boot $i: FAILED (phase $phase, exit status $(cat "$status")) after ${elapsed} s; last output: $(tail -c 300 <<<"$content" | tr '\n' '|')"
    elif [ "$noise" -gt 0 ]; then
        failed=$((failed + 1))
        echo "boot $i: FAILED: $noise SharpVisor progress line(s) interleaved with the guest's output"
    else
        ok=$((ok + 1))
        echo "boot $i: ok in ${elapsed} s"
    fi
done

echo "pty-soak: $boots boots, $ok ok, $stalled stalled, $failed failed"
[ "$ok" -eq "$boots" ]
