# bash completion for sbx-oci (runc's command line)           -*- shell-script -*-
# Installed as bash-completion/completions/sbx-oci; also works sourced on its
# own. Each command's options must be exactly what 'sbx-oci COMMAND --help'
# prints (tests/cli/test_docs.py checks).

_sbx_oci_commands="create start run state kill delete exec list spec features ps pause resume
    update events"
_sbx_oci_global_arg_opts="--root --log --log-format --cgroup-manager --rootless"
_sbx_oci_global_flag_opts="--debug --systemd-cgroup -v --version"

# $arg_opts take a value, $flag_opts do not.
_sbx_oci_command_opts()
{
    arg_opts="" flag_opts=""
    case $1 in
        create | run)
            arg_opts="-b --bundle --pid-file --console-socket --preserve-fds"
            flag_opts="--no-pivot --no-new-keyring -d --detach"
            ;;
        exec)
            arg_opts="-p --process --pid-file --console-socket --cwd -e --env -u --user
                --preserve-fds"
            flag_opts="-d --detach -t --tty"
            ;;
        kill) flag_opts="-a --all" ;;
        delete) flag_opts="-f --force" ;;
        list)
            arg_opts="-f --format"
            flag_opts="-q --quiet"
            ;;
        ps) arg_opts="-f --format" ;;
        spec)
            arg_opts="-b --bundle"
            flag_opts="--rootless"
            ;;
    esac
}

# The container ids under the --root the line names.
_sbx_oci_ids()
{
    local i root=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        [[ ${COMP_WORDS[i]} == --root ]] && root=(--root "${COMP_WORDS[i + 1]}")
    done
    "${COMP_WORDS[0]}" "${root[@]}" list -q 2>/dev/null
}

_sbx_oci()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local i cmd="" args=0 arg_opts flag_opts
    for ((i = 1; i < COMP_CWORD; i++)); do
        local w=${COMP_WORDS[i]}
        if [[ -z $cmd ]]; then
            case " $_sbx_oci_global_arg_opts " in *" $w "*) ((i++)); continue ;; esac
            [[ $w == -* ]] && continue
            cmd=$w
            _sbx_oci_command_opts "$cmd"
            continue
        fi
        case " $arg_opts " in *" $w "*) ((i++)); continue ;; esac
        [[ $w == -* ]] || ((args++))
    done
    case $prev in
        --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        --cgroup-manager) COMPREPLY=($(compgen -W "cgroupfs systemd disabled" -- "$cur")); return ;;
        --rootless) COMPREPLY=($(compgen -W "true false auto" -- "$cur")); return ;;
        --root | -b | --bundle) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --log | --pid-file | --console-socket | -p | --process)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        -f | --format)
            [[ $cmd == list || $cmd == ps ]] && COMPREPLY=($(compgen -W "table json" -- "$cur"))
            return
            ;;
    esac
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$_sbx_oci_global_arg_opts $_sbx_oci_global_flag_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_sbx_oci_commands" -- "$cur"))
        fi
        return
    fi
    case " $arg_opts " in *" $prev "*) return ;; esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$arg_opts $flag_opts" -- "$cur"))
        return
    fi
    case $cmd in
        start | state | kill | delete | exec | ps | pause | resume | update | events)
            ((args == 0)) && COMPREPLY=($(compgen -W "$(_sbx_oci_ids)" -- "$cur"))
            ;;
    esac
    if [[ $cmd == kill ]] && ((args == 1)); then
        COMPREPLY=($(compgen -W "TERM KILL INT HUP QUIT USR1 USR2 STOP CONT" -- "$cur"))
    fi
}
complete -F _sbx_oci sbx-oci
