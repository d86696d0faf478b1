# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hadiag_global_optspecs
    string join \n h/help V/version
end

function __fish_hadiag_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hadiag_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hadiag_using_subcommand
    set -l cmd (__fish_hadiag_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hadiag -n "__fish_hadiag_needs_command" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_needs_command" -s V -l version -d 'Print version'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "status" -d 'Show the live state of the local daemon: networks × nodes, serial, disks, monitors, verdict'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "explain" -d 'Explain a verdict or incident: evidence, reasoning, what each node saw, actions, timeline'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "run" -d 'Run the daemon (probes, heartbeats, diagnosis, hooks) until SIGTERM/SIGINT'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "lab" -d 'Fault drills on this machine: build a cluster in network namespaces, inject faults, demo'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "quiesce" -d 'Take this node out of service for planned maintenance: peers record maintenance, not a failure (no takeover, no fencing) until `resume`. Persists across daemon restarts'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "resume" -d 'End planned maintenance started with `quiesce`. Refused until every peer hears this node again on every path (so its absence is not judged a failure), unless --force'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "leave" -d 'Stop the local daemon. By default the stop is announced as maintenance (no takeover, no fencing); with --failover it is not, and peers take over as after a failure'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "rejoin" -d 'Leave an isolation that waits for the operator (policy resume_on_heal: false)'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "keygen" -d 'Write a new cluster authentication key (32 random bytes, mode 0600)'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "manpage" -d 'Print the man page (roff)'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "check-config" -d 'Validate a configuration file and print the resolved topology'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "fence-agent" -d 'Pacemaker fence agent `fence_hadiag` (a fencing gate; see docs/pacemaker.md): reads `name=value` lines on stdin, or fence-agent options such as `-o metadata`'
complete -c hadiag -n "__fish_hadiag_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -s c -l config -d 'Read the API address and token from this configuration file' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l url -d 'API base URL (overrides the configuration), e.g. http://127.0.0.1:9617' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l token-file -d 'File holding the API bearer token (default: from the configuration or $HADIAG_API_TOKEN)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l watch -d 'Refresh every N seconds until interrupted' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l json -d 'Print the raw JSON status'
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l no-color -d 'Never use colour'
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l check -d 'Monitoring-plugin mode: print one line and exit 0 healthy, 1 degraded (or maintenance, or a failure elsewhere), 2 a failure involving this node, 3 unknown (Nagios/Icinga, keepalived vrrp_script, corosync-qdevice heuristics; see docs/integrations.md)'
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -l serving -d 'With --check: exit 0 when this node may hold services (not isolated, not in maintenance, no failure involving it) and 1 otherwise (for keepalived)'
complete -c hadiag -n "__fish_hadiag_using_subcommand status" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l journal -d 'Read a journal (state directory or journal file) instead of asking the daemon: its newest 32 MiB, streamed from the end (an older rotated file reaches further back)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -s c -l config -d 'Read the API address and token from this configuration file' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l url -d 'API base URL (overrides the configuration), e.g. http://127.0.0.1:9617' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l token-file -d 'File holding the API bearer token (default: from the configuration or $HADIAG_API_TOKEN)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l json -d 'Print JSON instead of text'
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l list -d 'List the incidents known instead of explaining one'
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -l no-color -d 'Never use colour'
complete -c hadiag -n "__fish_hadiag_using_subcommand explain" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand run" -l config -d 'Configuration file (YAML)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand run" -l node -d 'This node\'s name (default: the host name)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand run" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "up" -d 'Build a lab (hubs, routers, nodes, serial lines, disks) and start a daemon per node'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "down" -d 'Remove everything a lab created (also after a crash or a half-built `up`)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "gc" -d 'Remove leftovers of crashed lab *tests* (namespaces hdg<pid>-* of dead processes, loop devices of deleted lab disks)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "status" -d 'Show the lab: daemons, each node\'s verdict, active faults'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "fault" -d 'Inject a fault'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "heal" -d 'Undo one fault (same words as `fault`) or all of them (`all` or nothing)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "demo" -d 'Two nodes, the fault matrix of docs/fault-matrix.md with verdicts and timings, one explain; everything torn down at the end (also on Ctrl-C)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and not __fish_seen_subcommand_from up down gc status fault heal demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l name -d 'Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l root -d 'Directory holding lab state directories' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l nodes -d 'Number of nodes (n1, n2, …)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l networks -d 'Network names: up to 3 get a documentation /24 each, 4 to 12 a /26 slice each (then at most 61 nodes)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l serial -d 'Serial lines as NODE-NODE (default: a chain n1-n2, n2-n3, …)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l heartbeat-ms -d 'Heartbeat interval in milliseconds (detect multiplier 3)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l daemon-exe -d 'hadiag binary to run as the daemons (default: this executable)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l no-serial -d 'No serial lines at all'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -l no-daemons -d 'Build the lab but start no daemons'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from up" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from down" -l name -d 'Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from down" -l root -d 'Directory holding lab state directories' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from down" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from gc" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from status" -l name -d 'Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from status" -l root -d 'Directory holding lab state directories' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from fault" -l name -d 'Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from fault" -l root -d 'Directory holding lab state directories' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from fault" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from heal" -l name -d 'Lab name (state in ROOT/NAME/state.json; namespaces hdg-NAME-*)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from heal" -l root -d 'Directory holding lab state directories' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from heal" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l root -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l steady-secs -d 'Seconds to hold the steady rows (1: no fault, 11: 5 % loss)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l timeout-secs -d 'Seconds to wait for each expected verdict' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l rows -d 'Only these rows of the matrix (e.g. `--rows 4,9`)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l daemon-exe -d 'hadiag binary to run as the daemons (default: this executable)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -l report -d 'Draw the drill as a timeline, one lane per row, to this file (`.svg` or `.html`)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from demo" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "up" -d 'Build a lab (hubs, routers, nodes, serial lines, disks) and start a daemon per node'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "down" -d 'Remove everything a lab created (also after a crash or a half-built `up`)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "gc" -d 'Remove leftovers of crashed lab *tests* (namespaces hdg<pid>-* of dead processes, loop devices of deleted lab disks)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the lab: daemons, each node\'s verdict, active faults'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "fault" -d 'Inject a fault'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "heal" -d 'Undo one fault (same words as `fault`) or all of them (`all` or nothing)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "demo" -d 'Two nodes, the fault matrix of docs/fault-matrix.md with verdicts and timings, one explain; everything torn down at the end (also on Ctrl-C)'
complete -c hadiag -n "__fish_hadiag_using_subcommand lab; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -s c -l config -d 'Configuration file of the daemon (for its state directory and node name)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -l node -d 'This node\'s name (default: the host name)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -l socket -d 'Control socket path (overrides the configuration)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -l reason -d 'Why (shown by status, logged and journaled)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -l force -d 'Quiesce even though this node runs services it took over from a peer'
complete -c hadiag -n "__fish_hadiag_using_subcommand quiesce" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand resume" -s c -l config -d 'Configuration file of the daemon (for its state directory and node name)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand resume" -l node -d 'This node\'s name (default: the host name)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand resume" -l socket -d 'Control socket path (overrides the configuration)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand resume" -l force -d 'Resume even though a peer does not hear this node on every path yet'
complete -c hadiag -n "__fish_hadiag_using_subcommand resume" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -s c -l config -d 'Configuration file of the daemon (for its state directory and node name)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -l node -d 'This node\'s name (default: the host name)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -l socket -d 'Control socket path (overrides the configuration)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -l failover -d 'Stop without announcement so peers take over this node\'s services'
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -l force -d 'Announce the leave even though this node runs services it took over from a peer'
complete -c hadiag -n "__fish_hadiag_using_subcommand leave" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand rejoin" -s c -l config -d 'Configuration file of the daemon (for its state directory and node name)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand rejoin" -l node -d 'This node\'s name (default: the host name)' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand rejoin" -l socket -d 'Control socket path (overrides the configuration)' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand rejoin" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand keygen" -s o -l out -d 'Where to write the key' -r -F
complete -c hadiag -n "__fish_hadiag_using_subcommand keygen" -l owner -d 'Give the file to this user (the daemon\'s, usually `hadiag`); it stays mode 0600' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand keygen" -l force -d 'Replace an existing file'
complete -c hadiag -n "__fish_hadiag_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand manpage" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand check-config" -l node -d 'Show the topology as seen from this node' -r
complete -c hadiag -n "__fish_hadiag_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand fence-agent" -s h -l help -d 'Print help'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "status" -d 'Show the live state of the local daemon: networks × nodes, serial, disks, monitors, verdict'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "explain" -d 'Explain a verdict or incident: evidence, reasoning, what each node saw, actions, timeline'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "run" -d 'Run the daemon (probes, heartbeats, diagnosis, hooks) until SIGTERM/SIGINT'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "lab" -d 'Fault drills on this machine: build a cluster in network namespaces, inject faults, demo'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "quiesce" -d 'Take this node out of service for planned maintenance: peers record maintenance, not a failure (no takeover, no fencing) until `resume`. Persists across daemon restarts'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "resume" -d 'End planned maintenance started with `quiesce`. Refused until every peer hears this node again on every path (so its absence is not judged a failure), unless --force'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "leave" -d 'Stop the local daemon. By default the stop is announced as maintenance (no takeover, no fencing); with --failover it is not, and peers take over as after a failure'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "rejoin" -d 'Leave an isolation that waits for the operator (policy resume_on_heal: false)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "keygen" -d 'Write a new cluster authentication key (32 random bytes, mode 0600)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "manpage" -d 'Print the man page (roff)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "check-config" -d 'Validate a configuration file and print the resolved topology'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "fence-agent" -d 'Pacemaker fence agent `fence_hadiag` (a fencing gate; see docs/pacemaker.md): reads `name=value` lines on stdin, or fence-agent options such as `-o metadata`'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and not __fish_seen_subcommand_from status explain run lab quiesce resume leave rejoin keygen completions manpage check-config fence-agent help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "up" -d 'Build a lab (hubs, routers, nodes, serial lines, disks) and start a daemon per node'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "down" -d 'Remove everything a lab created (also after a crash or a half-built `up`)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "gc" -d 'Remove leftovers of crashed lab *tests* (namespaces hdg<pid>-* of dead processes, loop devices of deleted lab disks)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "status" -d 'Show the lab: daemons, each node\'s verdict, active faults'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "fault" -d 'Inject a fault'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "heal" -d 'Undo one fault (same words as `fault`) or all of them (`all` or nothing)'
complete -c hadiag -n "__fish_hadiag_using_subcommand help; and __fish_seen_subcommand_from lab" -f -a "demo" -d 'Two nodes, the fault matrix of docs/fault-matrix.md with verdicts and timings, one explain; everything torn down at the end (also on Ctrl-C)'
