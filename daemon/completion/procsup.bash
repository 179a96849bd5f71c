# bash completion for procsup (installed as share/bash-completion/completions/procsup).
# Completes subcommands, options, config files and, for `procsup ctl`, the program and
# instance names of the running procsup (asked with `procsup ctl ... status --json`).

_procsup_names() {
  # The socket options already on the line, so that the names come from that procsup.
  local -a sock=()
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case "${COMP_WORDS[i]}" in
      --socket|--config) sock+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
    esac
  done
  "${COMP_WORDS[0]}" ctl "${sock[@]}" status --json 2>/dev/null |
    sed -n 's/.*"id":"\([^"]*\)".*"name":"\([^"]*\)".*/\1 \2/p; s/.*"name":"\([^"]*\)".*"id":"\([^"]*\)".*/\1 \2/p' |
    tr ' ' '\n' | LC_ALL=C sort -u
}

_procsup() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  COMPREPLY=()

  case "$prev" in
    --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "trace debug info warn error critical off" -- "$cur")); return ;;
    --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --config) COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur")); return ;;
    --from) COMPREPLY=($(compgen -W "supervisord procfile" -- "$cur")); return ;;
    --exit-after|-n|--lines) return ;;
  esac

  # The subcommand (and ctl's) given so far.
  local cmd="" sub="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in
      --log-format|--log-level|--socket|--config|--from|--exit-after|-n|--lines) ((i++)) ;;
      -*) ;;
      *)
        if [[ -z "$cmd" ]]; then cmd="$w"
        elif [[ "$cmd" == ctl && -z "$sub" ]]; then sub="$w"
        fi ;;
    esac
  done

  case "$cmd" in
    "")
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "--log-format --log-level --version --help" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "run check import ctl" -- "$cur"))
      fi ;;
    run)
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "--exit-after --help" -- "$cur"))
      else COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur")); fi ;;
    check)
      COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur")) ;;
    import)
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "--from --help" -- "$cur"))
      else COMPREPLY=($(compgen -f -- "$cur")); fi ;;
    ctl)
      case "$sub" in
        "")
          if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "--socket --config --json --help" -- "$cur"))
          else COMPREPLY=($(compgen -W "status start stop restart signal logs reload send shutdown" -- "$cur")); fi ;;
        status|start|stop|restart|logs|send)
          if [[ "$cur" == -* ]]; then
            case "$sub" in
              status) COMPREPLY=($(compgen -W "--json" -- "$cur")) ;;
              logs) COMPREPLY=($(compgen -W "-n --lines -f --follow --json" -- "$cur")) ;;
            esac
          else
            COMPREPLY=($(compgen -W "$(_procsup_names)" -- "$cur"))
          fi ;;
        signal)
          if [[ "$prev" == signal ]]; then COMPREPLY=($(compgen -W "$(_procsup_names)" -- "$cur"))
          else COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM STOP CONT" -- "$cur")); fi ;;
      esac ;;
  esac
}

complete -F _procsup procsup
