# bash completion for sbx                                   -*- shell-script -*-
# Installed as bash-completion/completions/sbx (loaded on demand by the
# bash-completion package); also works sourced on its own, with plainer file
# completion.

_sbx_commands="run pull load images inspect rmi prune ps logs exec stop kill rm check network login logout"

# Options every command takes (all need a value).
_sbx_global_opts="--root --log-level --userns --platform"

# The options of a command: $arg_opts take a value, $flag_opts do not.
# Must list exactly what 'sbx CMD --help' prints (tests/cli/test_docs.py).
_sbx_command_opts()
{
    arg_opts="" flag_opts=""
    case $1 in
        run)
            arg_opts="-e --env --env-file -w --workdir -u --user -h --hostname --entrypoint
                --network -p --publish --net-allow --net-log --mtu --cap-add --cap-drop --security-opt
                --tmpfs --ulimit --pids-limit -m --memory --cpus -v --volume --name --pull
                --rootfs-size --timeout --report --network-alias --log-size"
            flag_opts="--rm -q --quiet --read-only -i --interactive -t --tty -d --detach
                --rootfs-disk"
            ;;
        pull) flag_opts="-q --quiet --tls-verify" ;;
        login)
            arg_opts="-u --username"
            flag_opts="--password-stdin --tls-verify"
            ;;
        logout) ;;
        load)
            arg_opts="--image --name"
            flag_opts="-q --quiet --rootfs"
            ;;
        images | ps)
            arg_opts="--format"
            [[ $1 == ps ]] && flag_opts="-a --all"
            ;;
        inspect) arg_opts="--format" ;;
        rmi | rm) flag_opts="-f --force" ;;
        logs) flag_opts="-f --follow" ;;
        exec)
            arg_opts="-e --env -u --user -w --workdir"
            flag_opts="-i --interactive -t --tty"
            ;;
        stop) arg_opts="-t --time" ;;
        kill) arg_opts="-s --signal" ;;
        network)
            arg_opts="--subnet --format"
            flag_opts="--internal"
            ;;
        prune | check) ;;
    esac
    # One blank between options, whatever the lines above look like.
    local IFS=$' \t\n'
    local -a a=($arg_opts $_sbx_global_opts) f=($flag_opts)
    arg_opts="${a[*]}" flag_opts="${f[*]}"
}

_sbx_capabilities="ALL AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE
    CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE
    LINUX_IMMUTABLE MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW
    PERFMON SETFCAP SETGID SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE
    SYS_PACCT SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM"
# The names sbx kill -s knows (numbers work too).
_sbx_signals="KILL TERM INT HUP QUIT USR1 USR2 CONT STOP WINCH"
_sbx_ulimits="as core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime
    sigpending stack"
_sbx_archive_ext="tar|tar.gz|tgz|tar.xz|txz|tar.zst|tar.bz2|tbz2"

# sbx itself, with the --root the command line names (images live there).
_sbx_query()
{
    local i root=()
    for ((i = 2; i < cword; i++)); do
        case ${words[i]} in
            --root) root=(--root "${words[i + 1]}") ;;
            --root=*) root=(--root "${words[i]#--root=}") ;;
        esac
    done
    "${words[0]}" "$1" "${root[@]}" "${@:2}" 2>/dev/null
}

# Names from the first column of a table (header line first).
_sbx_images()
{
    _sbx_query images | awk 'NR > 1 && $1 != "<none>" { print $1 }'
}

_sbx_sandboxes()
{
    _sbx_query ps -a | awk 'NR > 1 { print $1 }'
}

_sbx_networks()
{
    "${words[0]}" network ls 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# Add the candidates (words in $1, split at $2) that start with $cur. Bash
# replaces only the part of the word after its last ':' or '=' (both are in
# COMP_WORDBREAKS), so that part is all a candidate may hold.
_sbx_add()
{
    local IFS=$2 c
    local -a found
    found=($(compgen -W "$1" -- "$cur"))
    local breaks=${COMP_WORDBREAKS//[^=:]/}
    local prefix=
    [[ $breaks ]] && prefix=${cur%"${cur##*[$breaks]}"}
    for c in "${found[@]}"; do
        COMPREPLY+=("${c#"$prefix"}")
    done
}

_sbx_add_words()
{
    _sbx_add "$1" $' \t\n'
}

_sbx_add_lines()
{
    _sbx_add "$1" $'\n'
}

# Files (with extension pattern $1, plus directories), or directories (-d).
_sbx_files()
{
    if declare -F _filedir >/dev/null; then
        _filedir "$@"
        return
    fi
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    if [[ $1 == -d ]]; then
        COMPREPLY+=($(compgen -d -- "$cur"))
    elif [[ $1 ]]; then
        local restore
        restore=$(shopt -p extglob)
        shopt -s extglob
        COMPREPLY+=($(compgen -f -X "!*.@($1)" -- "$cur") $(compgen -d -- "$cur"))
        eval "$restore"
    else
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
}

# The value of option $1 ($cur is what was typed of it).
_sbx_option_value()
{
    case $1 in
        --root) _sbx_files -d ;;
        --log-level) _sbx_add_words "error warn info debug" ;;
        --userns) _sbx_add_words "auto single range" ;;
        --platform)
            _sbx_add_words "linux/amd64 linux/arm64 linux/arm/v7 linux/arm/v6 linux/386
                linux/ppc64le linux/s390x linux/riscv64"
            ;;
        --format)
            case $command in
                inspect) _sbx_add_words "text json" ;;
                *) _sbx_add_words "table json" ;;
            esac
            ;;
        --network)
            _sbx_add_words "slirp slirp:allow_host_loopback=true slirp:allow_host_addresses=false
                slirp:tcp_relay=true none host"
            _sbx_add_lines "$(_sbx_networks)"
            ;;
        --net-allow) _sbx_add_words "dns" ;;
        --cap-add | --cap-drop) _sbx_add_words "$_sbx_capabilities" ;;
        --security-opt)
            if [[ $cur == seccomp=?* && $cur != seccomp=u* ]]; then
                # A profile: the file part only, unless '=' does not split words.
                local cur=${cur#seccomp=}
                _sbx_files json
                if [[ $COMP_WORDBREAKS != *=* ]]; then
                    COMPREPLY=("${COMPREPLY[@]/#/seccomp=}")
                fi
            else
                _sbx_add_words "seccomp= seccomp=unconfined no-new-privileges"
                [[ ${COMPREPLY[*]} == seccomp= ]] && compopt -o nospace 2>/dev/null
            fi
            ;;
        --ulimit)
            _sbx_add_words "$(printf '%s= ' $_sbx_ulimits)"
            compopt -o nospace 2>/dev/null
            ;;
        --env-file | --report | --net-log) _sbx_files ;;
        -v | --volume)
            # HOST (a file or directory), then ':' and the path inside.
            if [[ $cur != *:* ]]; then
                _sbx_files
                compopt -o nospace 2>/dev/null
            fi
            ;;
        -s | --signal)
            [[ $command == kill ]] && _sbx_add_words "$_sbx_signals"
            ;;
        --pull) _sbx_add_words "missing always never" ;;
        --tls-verify) _sbx_add_words "true false" ;;
        --image | --name | -e | --env | -w | --workdir | -u | --user | --username | -h | --hostname | \
            --entrypoint | -p | --publish | --mtu | --tmpfs | --pids-limit | -m | --memory | \
            --cpus | -t | --time | --rootfs-size | --log-size | --timeout | --network-alias | --subnet) ;;
    esac
}

_sbx()
{
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s -n : || return
    else
        # Without bash-completion: words split at blanks only (no quoting).
        COMPREPLY=()
        local line=${COMP_LINE:0:COMP_POINT}
        read -ra words <<<"$line"
        [[ $line == *[[:space:]] ]] && words+=("")
        cword=$((${#words[@]} - 1))
        cur=${words[cword]} prev=${words[cword - 1]}
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*} cur=${cur#*=} split=true
        fi
    fi

    if ((cword == 1)); then
        if [[ $cur == -* ]]; then
            _sbx_add_words "--help --version -h -V"
        else
            _sbx_add_words "$_sbx_commands"
        fi
        return
    fi

    local command=${words[1]} arg_opts flag_opts
    [[ " $_sbx_commands " == *" $command "* ]] || return
    _sbx_command_opts "$command"

    # Which positional argument is this, and is it an option's value?
    # Options stop at the first positional for run and exec (what follows is
    # the sandbox's command line).
    local i w npos=0 stopped=false value_of=
    for ((i = 2; i < cword; i++)); do
        w=${words[i]}
        if $stopped || [[ $w != -* || $w == - ]]; then
            ((npos++))
            case $command in run | exec) stopped=true ;; esac
        elif [[ $w == -- ]]; then
            stopped=true
        elif [[ $w != *=* && " $arg_opts " == *" $w "* ]]; then
            ((i + 1 == cword)) && value_of=$w
            ((i++))
        fi
    done
    if ! $stopped && $split; then
        value_of=$prev
    fi
    if [[ $value_of ]]; then
        _sbx_option_value "$value_of"
        return
    fi

    if [[ $cur == -* ]] && ! $stopped; then
        _sbx_add_words "$arg_opts $flag_opts --help"
        return
    fi

    case $command in
        run | inspect)
            if ((npos == 0)); then
                _sbx_add_lines "$(_sbx_images)"
                _sbx_files "$_sbx_archive_ext"
            else
                # The command inside the sandbox: files are the best guess.
                compopt -o default 2>/dev/null
            fi
            ;;
        load)
            ((npos == 0)) && _sbx_files "$_sbx_archive_ext"
            ;;
        pull)
            ((npos == 0)) && _sbx_add_lines "$(_sbx_images)"
            ;;
        rmi)
            _sbx_add_lines "$(_sbx_images)"
            ;;
        logs)
            ((npos == 0)) && _sbx_add_lines "$(_sbx_sandboxes)"
            ;;
        exec)
            if ((npos == 0)); then
                _sbx_add_lines "$(_sbx_sandboxes)"
            else
                compopt -o default 2>/dev/null
            fi
            ;;
        stop | kill | rm)
            _sbx_add_lines "$(_sbx_sandboxes)"
            ;;
        network)
            if ((npos == 0)); then
                _sbx_add_words "create ls inspect rm"
            else
                case ${words[2]} in
                    inspect | rm) _sbx_add_lines "$(_sbx_networks)" ;;
                esac
            fi
            ;;
    esac
} &&
    complete -F _sbx sbx

# ex: filetype=sh
