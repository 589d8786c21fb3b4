# fish completion for sbx-oci (runc's command line). Installed in
# fish/vendor_completions.d. Each command's options must be exactly what
# 'sbx-oci COMMAND --help' prints (tests/cli/test_docs.py checks).

# The command on the line (global options and their values skipped).
function __sbx_oci_command
    set -l tokens (commandline -opc)
    set -l skip 0
    for t in $tokens[2..-1]
        if test $skip -eq 1
            set skip 0
        else if contains -- $t --root --log --log-format --cgroup-manager --rootless
            set skip 1
        else if not string match -q -- '-*' $t
            echo -- $t
            return
        end
    end
end

function __sbx_oci_needs_command
    test -z (__sbx_oci_command)
end

function __sbx_oci_is -a cmds
    contains -- (__sbx_oci_command) (string split ' ' -- $cmds)
end

function __sbx_oci_ids
    set -l tokens (commandline -opc)
    set -l i (contains -i -- --root $tokens)
    if test -n "$i"
        $tokens[1] --root $tokens[(math $i + 1)] list -q 2>/dev/null
    else
        $tokens[1] list -q 2>/dev/null
    end
end

complete -c sbx-oci -f

# Global options, before the command.
set -l g '__sbx_oci_needs_command'
complete -c sbx-oci -n $g -l root -r -a '(__fish_complete_directories)' -d 'Directory for the containers\' state'
complete -c sbx-oci -n $g -l log -r -F -d 'Write errors to FILE'
complete -c sbx-oci -n $g -l log-format -x -a 'text json' -d 'Log format'
complete -c sbx-oci -n $g -l debug -d 'Narrate each step'
complete -c sbx-oci -n $g -l systemd-cgroup -d 'Accepted (no cgroups)'
complete -c sbx-oci -n $g -l cgroup-manager -x -a 'cgroupfs systemd disabled' -d 'Accepted (no cgroups)'
complete -c sbx-oci -n $g -l rootless -x -a 'true false auto' -d 'Accepted (always rootless)'
complete -c sbx-oci -n $g -s v -l version -d 'Print the version'

complete -c sbx-oci -n $g -a create -d 'Set a container up; it waits for start'
complete -c sbx-oci -n $g -a start -d 'Run the program of a created container'
complete -c sbx-oci -n $g -a run -d 'create + start, waiting for the program'
complete -c sbx-oci -n $g -a state -d 'The container\'s state as JSON'
complete -c sbx-oci -n $g -a kill -d 'Send a signal to the container\'s process'
complete -c sbx-oci -n $g -a delete -d 'Remove a stopped (or, with --force, any) container'
complete -c sbx-oci -n $g -a exec -d 'Run another process in a running container'
complete -c sbx-oci -n $g -a list -d 'The containers under --root'
complete -c sbx-oci -n $g -a spec -d 'Write a default rootless config.json'
complete -c sbx-oci -n $g -a features -d 'What this runtime supports, as JSON'
complete -c sbx-oci -n $g -a ps -d 'The container\'s processes'
complete -c sbx-oci -n $g -a pause -d 'Refused: needs the freezer cgroup'
complete -c sbx-oci -n $g -a resume -d 'Refused: needs the freezer cgroup'
complete -c sbx-oci -n $g -a update -d 'Refused: needs a cgroup'
complete -c sbx-oci -n $g -a events -d 'Refused: statistics need a cgroup'

# create and run
set -l c '__sbx_oci_is "create run"'
complete -c sbx-oci -n $c -s b -l bundle -r -a '(__fish_complete_directories)' -d 'The bundle directory'
complete -c sbx-oci -n $c -l pid-file -r -F -d 'Write the container\'s pid to FILE'
complete -c sbx-oci -n $c -l console-socket -r -F -d 'Send the terminal\'s master to this socket'
complete -c sbx-oci -n $c -l no-pivot -d 'Accepted'
complete -c sbx-oci -n $c -l no-new-keyring -d 'Accepted'
complete -c sbx-oci -n $c -l preserve-fds -x -d 'Pass N file descriptors'
complete -c sbx-oci -n $c -s d -l detach -d 'run: do not wait for the container'

# exec
set -l x '__sbx_oci_is exec'
complete -c sbx-oci -n $x -s p -l process -r -F -d 'The process as JSON'
complete -c sbx-oci -n $x -s d -l detach -d 'Do not wait for the process'
complete -c sbx-oci -n $x -l pid-file -r -F -d 'Write the process\'s pid to FILE'
complete -c sbx-oci -n $x -l console-socket -r -F -d 'Send the terminal\'s master to this socket'
complete -c sbx-oci -n $x -s t -l tty -d 'A pseudo-terminal'
complete -c sbx-oci -n $x -l cwd -x -d 'Working directory'
complete -c sbx-oci -n $x -s e -l env -x -d 'Set KEY=VALUE'
complete -c sbx-oci -n $x -s u -l user -x -d 'UID[:GID]'
complete -c sbx-oci -n $x -l preserve-fds -x -d 'Pass N file descriptors'

complete -c sbx-oci -n '__sbx_oci_is kill' -s a -l all -d 'Every process of the container'
complete -c sbx-oci -n '__sbx_oci_is delete' -s f -l force -d 'Kill the container if it runs'
complete -c sbx-oci -n '__sbx_oci_is "list ps"' -s f -l format -x -a 'table json' -d 'Output format'
complete -c sbx-oci -n '__sbx_oci_is list' -s q -l quiet -d 'Only the ids'
complete -c sbx-oci -n '__sbx_oci_is spec' -s b -l bundle -r -a '(__fish_complete_directories)' -d 'Write DIR/config.json'
complete -c sbx-oci -n '__sbx_oci_is spec' -l rootless -d 'Accepted'

# Container ids.
complete -c sbx-oci -n '__sbx_oci_is "start state kill delete exec ps pause resume update events"' -a '(__sbx_oci_ids)'
