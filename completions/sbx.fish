# fish completion for sbx. Installed in fish/vendor_completions.d.
#
# Each command's options must be exactly what 'sbx COMMAND --help' prints
# (tests/cli/test_docs.py checks); __sbx_value_opts lists those taking a value.

# The command on the line: sbx's first argument.
function __sbx_command
    set -l tokens (commandline -opc)
    set -q tokens[2]; and echo -- $tokens[2]
end

function __sbx_needs_command
    test (count (commandline -opc)) -eq 1
end

# Options of a command that take a value (the global ones first).
function __sbx_value_opts -a cmd
    printf '%s\n' --root --log-level --userns --platform
    switch "$cmd"
        case run
            printf '%s\n' -e --env --env-file -w --workdir -u --user -h --hostname --entrypoint \
                --network -p --publish --net-allow --net-log --mtu --cap-add --cap-drop --security-opt \
                --tmpfs --ulimit --pids-limit -m --memory --cpus -v --volume --name --pull \
                --rootfs-size --timeout --report --network-alias --log-size
        case network
            printf '%s\n' --subnet --format
        case login
            printf '%s\n' -u --username
        case load
            printf '%s\n' --image --name
        case images inspect ps
            printf '%s\n' --format
        case exec
            printf '%s\n' -e --env -u --user -w --workdir
        case stop
            printf '%s\n' -t --time
        case kill
            printf '%s\n' -s --signal
    end
end

# Where the cursor is: "<positionals before it> <options over: 0|1> <after a
# value option: 0|1>". Options stop at the first positional for run and exec
# (what follows is the sandbox's command line).
function __sbx_state
    set -l tokens (commandline -opc)
    set -l cmd $tokens[2]
    set -l value_opts (__sbx_value_opts $cmd)
    set -l n 0
    set -l stopped 0
    set -l want_value 0
    for t in $tokens[3..-1]
        if test $want_value = 1
            set want_value 0
        else if test $stopped = 1; or not string match -q -- '-?*' $t
            set n (math $n + 1)
            contains -- $cmd run exec; and set stopped 1
        else if test "$t" = --
            set stopped 1
        else if contains -- $t $value_opts
            set want_value 1
        end
    end
    echo $n $stopped $want_value
end

# Options are offered: the command is one of $argv (any when none given) and
# options have not stopped.
function __sbx_opts
    set -l cmd (__sbx_command)
    test -n "$cmd"; or return 1
    set -q argv[1]; and not contains -- $cmd $argv; and return 1
    set -l s (string split ' ' -- (__sbx_state))
    test $s[2] = 0
end

# Positional argument number $argv[2] (counting from 0; '*' for any, '+' for
# any but the first) of command $argv[1] is wanted here.
function __sbx_arg -a cmd pos
    set -l c (__sbx_command)
    test "$cmd" = "$c"; or return 1
    set -l s (string split ' ' -- (__sbx_state))
    test $s[3] = 0; or return 1
    if test "$pos" = '*'
        return 0
    else if test "$pos" = +
        test $s[1] -ge 1
    else
        test $s[1] = $pos
    end
end

# sbx as typed, with the --root the command line names.
function __sbx_query
    set -l tokens (commandline -opc)
    set -l root
    set -l i 3
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case --root
                set -q tokens[(math $i + 1)]; and set root --root $tokens[(math $i + 1)]
            case '--root=*'
                set root --root (string replace -- --root= '' $tokens[$i])
        end
        set i (math $i + 1)
    end
    command $tokens[1] $argv[1] $root $argv[2..-1] 2>/dev/null
end

# Names: the first column of a table after its header line.
function __sbx_images
    __sbx_query images | awk 'NR > 1 && $1 != "<none>" { print $1 "\timage" }'
end

function __sbx_sandboxes
    __sbx_query ps -a | awk 'NR > 1 { print $1 "\tsandbox" }'
end

function __sbx_networks
    set -l tokens (commandline -opc)
    command $tokens[1] network ls 2>/dev/null | awk 'NR > 1 { print $1 "\tnetwork" }'
end

function __sbx_archives
    for f in (__fish_complete_path (commandline -ct))
        set -l p (string split -f1 \t -- $f)
        if string match -q -- '*/' $p
            printf '%s\tdirectory\n' $p
        else if string match -qr -- '\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.zst|tar\.bz2|tbz2)$' $p
            printf '%s\tarchive\n' $p
        end
    end
end

function __sbx_security_opts
    set -l tok (commandline -ct)
    if string match -q -- 'seccomp=?*' $tok; and not string match -q -- 'seccomp=u*' $tok
        for f in (__fish_complete_path (string replace -- seccomp= '' $tok))
            printf 'seccomp=%s\tprofile\n' (string split -f1 \t -- $f)
        end
    else
        printf '%s\t%s\n' seccomp= 'seccomp profile (JSON file)' \
            seccomp=unconfined 'no system call filter' no-new-privileges 'always on'
    end
end

complete -c sbx -f

# sbx itself
complete -c sbx -n __sbx_needs_command -s h -l help -d 'Show help'
complete -c sbx -n __sbx_needs_command -s V -l version -d 'Show versions'
complete -c sbx -n __sbx_needs_command -a run -d 'Run an image in a rootless sandbox'
complete -c sbx -n __sbx_needs_command -a pull -d 'Pull an image from a registry into the store'
complete -c sbx -n __sbx_needs_command -a load -d 'Import an image archive into the store'
complete -c sbx -n __sbx_needs_command -a images -d 'List the images in the store'
complete -c sbx -n __sbx_needs_command -a inspect -d "Show an image's config, layers and history"
complete -c sbx -n __sbx_needs_command -a rmi -d 'Remove images from the store'
complete -c sbx -n __sbx_needs_command -a prune -d 'Delete layers no image uses'
complete -c sbx -n __sbx_needs_command -a ps -d 'List named and detached sandboxes'
complete -c sbx -n __sbx_needs_command -a logs -d "Print a detached sandbox's output"
complete -c sbx -n __sbx_needs_command -a exec -d 'Run a command in a running sandbox'
complete -c sbx -n __sbx_needs_command -a stop -d 'Stop sandboxes (SIGTERM, then SIGKILL)'
complete -c sbx -n __sbx_needs_command -a kill -d 'Send a signal to sandboxes'
complete -c sbx -n __sbx_needs_command -a rm -d 'Remove exited sandboxes'
complete -c sbx -n __sbx_needs_command -a check -d 'Report whether this host supports sbx'
complete -c sbx -n __sbx_needs_command -a network -d 'Create, list, inspect and remove sandbox networks'
complete -c sbx -n __sbx_needs_command -a login -d 'Log in to a registry'
complete -c sbx -n __sbx_needs_command -a logout -d "Forget a registry's credentials"

# Options every command takes
complete -c sbx -n __sbx_opts -l root -x -a '(__fish_complete_directories)' -d 'Store directory'
complete -c sbx -n __sbx_opts -l log-level -x -a 'error warn info debug' -d 'How much to narrate'
complete -c sbx -n __sbx_opts -l userns -x -d 'User id mapping' -a "
    auto\t'a range if /etc/subuid grants one, else one id'
    single\t'your one id as root'
    range\t'the /etc/subuid range via newuidmap'"
complete -c sbx -n __sbx_opts -l platform -x -d 'Image platform of a multi-platform archive' \
    -a 'linux/amd64 linux/arm64 linux/arm/v7 linux/arm/v6 linux/386 linux/ppc64le linux/s390x linux/riscv64'

# run
set -l caps ALL AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN \
    DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE \
    MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON SETFCAP \
    SETGID SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT \
    SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM
set -l ulimits as core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime \
    sigpending stack
complete -c sbx -n '__sbx_opts run' -s e -l env -x -d "Set KEY=VALUE, or pass KEY from sbx's environment"
complete -c sbx -n '__sbx_opts run' -l env-file -r -F -d 'Read KEY=VALUE lines from a file'
complete -c sbx -n '__sbx_opts run' -s w -l workdir -x -d 'Working directory inside'
complete -c sbx -n '__sbx_opts run' -s u -l user -x -d 'Run as USER[:GROUP] (names or ids)'
complete -c sbx -n '__sbx_opts run' -s h -l hostname -x -d 'Hostname inside'
complete -c sbx -n '__sbx_opts run' -l entrypoint -x -d "Replace the image's Entrypoint"
complete -c sbx -n '__sbx_opts run' -l network -x -d 'Network mode' -a "
    slirp\t'own network stack through libslirp (default)'
    slirp:allow_host_loopback=true\t'slirp, and 10.0.2.2 reaches the host\'s 127.0.0.1'
    slirp:allow_host_addresses=false\t'slirp, and the host\'s own addresses are refused'
    slirp:tcp_relay=true\t'slirp, and TCP connections relayed beside libslirp (faster)'
    none\t'loopback only'
    host\t'the host\'s network, unisolated'
    (__sbx_networks)"
complete -c sbx -n '__sbx_opts run' -l network-alias -x -d 'Another name the sandbox answers to on its network'
complete -c sbx -n '__sbx_opts run' -s p -l publish -x -d 'Forward [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]'
complete -c sbx -n '__sbx_opts run' -l net-allow -x -a 'dns' -d 'Only allow this outbound traffic'
complete -c sbx -n '__sbx_opts run' -l net-log -r -F -d 'Record outbound attempts and DNS queries as JSON lines'
complete -c sbx -n '__sbx_opts run' -l mtu -x -d 'MTU of the slirp network (default 65520)'
complete -c sbx -n '__sbx_opts run' -l rm -d "Remove a named or detached sandbox's state when it exits"
complete -c sbx -n '__sbx_opts run' -s q -l quiet -d 'No progress output'
complete -c sbx -n '__sbx_opts run' -l cap-add -x -a "$caps" -d 'Add a capability (or ALL)'
complete -c sbx -n '__sbx_opts run' -l cap-drop -x -a "$caps" -d 'Drop a capability (or ALL)'
complete -c sbx -n '__sbx_opts run' -l security-opt -x -a '(__sbx_security_opts)' -d 'seccomp=PROFILE.json, seccomp=unconfined, no-new-privileges'
complete -c sbx -n '__sbx_opts run' -l read-only -d 'Mount the root file system read-only'
complete -c sbx -n '__sbx_opts run' -l tmpfs -x -d 'Mount a writable tmpfs: PATH[:size=SIZE,mode=MODE]'
complete -c sbx -n '__sbx_opts run' -l ulimit -x -a "(printf '%s=\n' $ulimits)" -d 'Set a resource limit: NAME=SOFT[:HARD]'
complete -c sbx -n '__sbx_opts run' -l pids-limit -x -d 'At most N processes (cgroup v2, else RLIMIT_NPROC; 0: unlimited)'
complete -c sbx -n '__sbx_opts run' -s m -l memory -x -d 'Memory limit (cgroup v2)'
complete -c sbx -n '__sbx_opts run' -l rootfs-size -x -d 'Bound of the writable layer and of --tmpfs'
complete -c sbx -n '__sbx_opts run' -l log-size -x -d 'Bound of a detached sandbox\'s log'
complete -c sbx -n '__sbx_opts run' -l rootfs-disk -d 'Keep the writable layer on disk in the store'
complete -c sbx -n '__sbx_opts run' -l timeout -x -d 'Kill the sandbox after DURATION (exit status 124)'
complete -c sbx -n '__sbx_opts run' -l report -r -F -d 'Write a JSON report of the run at exit'
complete -c sbx -n '__sbx_opts run' -l cpus -x -d 'CPU limit, e.g. 1.5 (cgroup v2)'
complete -c sbx -n '__sbx_opts run' -s i -l interactive -d 'Keep standard input open'
complete -c sbx -n '__sbx_opts run' -s t -l tty -d 'Give the program a terminal'
complete -c sbx -n '__sbx_opts run' -s v -l volume -x -a '(__fish_complete_path (commandline -ct))' -d 'Bind HOST:CONTAINER[:ro|rw]'
complete -c sbx -n '__sbx_opts run' -s d -l detach -d 'Run in the background, print the name'
complete -c sbx -n '__sbx_opts run' -l name -x -d 'Name the sandbox (for sbx ps, logs, exec, stop, kill, rm)'
complete -c sbx -n '__sbx_opts run' -l pull -x -a 'missing always never' -d 'Pull IMAGE from its registry'
complete -c sbx -n '__sbx_arg run 0' -a '(__sbx_images) (__sbx_archives)'
complete -c sbx -n '__sbx_arg run +' -F

# load
complete -c sbx -n '__sbx_opts load' -l image -x -d 'Which image of a multi-image archive (NAME[:TAG])'
complete -c sbx -n '__sbx_opts load' -s q -l quiet -d 'No progress output'
complete -c sbx -n '__sbx_opts load' -l rootfs -d 'ARCHIVE is a plain root filesystem tarball'
complete -c sbx -n '__sbx_opts load' -l name -x -d 'Name for a --rootfs image (NAME[:TAG])'
complete -c sbx -n '__sbx_arg load 0' -a '(__sbx_archives)'

# pull
complete -c sbx -n '__sbx_opts pull' -s q -l quiet -d 'No progress output'
complete -c sbx -n '__sbx_opts pull' -l tls-verify -d 'Verify the registry certificate (--tls-verify=false: do not)'
complete -c sbx -n '__sbx_arg pull 0' -a '(__sbx_images)'

# login, logout
complete -c sbx -n '__sbx_opts login' -s u -l username -x -d 'User name'
complete -c sbx -n '__sbx_opts login' -l password-stdin -d 'Read the password from standard input'
complete -c sbx -n '__sbx_opts login' -l tls-verify -d 'Verify the registry certificate (--tls-verify=false: do not)'

# images
complete -c sbx -n '__sbx_opts images' -l format -x -a 'table json' -d 'Output format'

# inspect
complete -c sbx -n '__sbx_opts inspect' -l format -x -a 'text json' -d 'Output format'
complete -c sbx -n '__sbx_arg inspect 0' -a '(__sbx_images) (__sbx_archives)'

# rmi
complete -c sbx -n '__sbx_opts rmi' -s f -l force -d 'Remove the image even if it has other names'
complete -c sbx -n "__sbx_arg rmi '*'" -a '(__sbx_images)'

# ps
complete -c sbx -n '__sbx_opts ps' -s a -l all -d 'Also the sandboxes that have exited'
complete -c sbx -n '__sbx_opts ps' -l format -x -a 'table json' -d 'Output format'

# logs
complete -c sbx -n '__sbx_opts logs' -s f -l follow -d 'Keep printing until the sandbox exits'
complete -c sbx -n '__sbx_arg logs 0' -a '(__sbx_sandboxes)'

# exec
complete -c sbx -n '__sbx_opts exec' -s i -l interactive -d 'Keep standard input open'
complete -c sbx -n '__sbx_opts exec' -s t -l tty -d 'Give the program a terminal'
complete -c sbx -n '__sbx_opts exec' -s e -l env -x -d 'Set KEY=VALUE'
complete -c sbx -n '__sbx_opts exec' -s u -l user -x -d 'Run as USER[:GROUP]'
complete -c sbx -n '__sbx_opts exec' -s w -l workdir -x -d 'Working directory inside'
complete -c sbx -n '__sbx_arg exec 0' -a '(__sbx_sandboxes)'
complete -c sbx -n '__sbx_arg exec +' -F

# stop
complete -c sbx -n '__sbx_opts stop' -s t -l time -x -d 'Seconds to wait after SIGTERM before SIGKILL (default 10)'
complete -c sbx -n "__sbx_arg stop '*'" -a '(__sbx_sandboxes)'

# kill
complete -c sbx -n '__sbx_opts kill' -s s -l signal -x -d 'Signal to send' -a '
    KILL TERM INT HUP QUIT USR1 USR2 CONT STOP WINCH'
complete -c sbx -n "__sbx_arg kill '*'" -a '(__sbx_sandboxes)'

# rm
complete -c sbx -n '__sbx_opts rm' -s f -l force -d 'Kill a running sandbox first'
complete -c sbx -n "__sbx_arg rm '*'" -a '(__sbx_sandboxes)'

# network
complete -c sbx -n '__sbx_opts network' -l subnet -x -d "create: the network's IPv4 subnet"
complete -c sbx -n '__sbx_opts network' -l internal -d 'create: no way out'
complete -c sbx -n '__sbx_opts network' -l format -x -a 'table json' -d 'ls: output format'
complete -c sbx -n "__sbx_arg network 0" -a "
    create\t'make a network'
    ls\t'list the networks'
    inspect\t'show a network as JSON'
    rm\t'remove networks'"
complete -c sbx -n "__sbx_arg network +" -a '(__sbx_networks)'

# prune and check take only the options every command takes.
