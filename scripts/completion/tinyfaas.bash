# bash completion for tinyfaas. Load it with
#   source scripts/completion/tinyfaas.bash
# or install it as /usr/share/bash-completion/completions/tinyfaas.
# Function names come from the daemon (`tinyfaas list -q`, with the URL and
# token flags already on the line), so they complete only while it runs.

_tinyfaas_functions() {
  local i args=()
  for ((i = 2; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      --url|--token) args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
    esac
  done
  "${COMP_WORDS[0]}" list -q "${args[@]}" 2>/dev/null
}

_tinyfaas() {
  local cur prev command
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD - 1]}"
  command="${COMP_WORDS[1]}"

  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W "serve deploy list ls invoke delete rm logs wipe --help --version" -- "$cur"))
    return
  fi

  case "$prev" in
    -r|--runtime) COMPREPLY=($(compgen -W "nodejs python3 binary go" -- "$cur")); return ;;
    -p|--protocol) COMPREPLY=($(compgen -W "http coap grpc" -- "$cur")); return ;;
    --backend) COMPREPLY=($(compgen -W "auto docker process" -- "$cur")); return ;;
    --sandbox) COMPREPLY=($(compgen -W "auto bwrap none" -- "$cur")); return ;;
    --runtime-images) COMPREPLY=($(compgen -W "local official" -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "trace debug info warn error off" -- "$cur")); return ;;
    -f|--file|--data-file|--config|--state-dir|--runtimes-dir|--binary-handler)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --url|--token|-n|--name|-t|--threads|-e|--env|--var|--memory-mb|--cpus|--concurrency|--queue|-d|--data|--endpoint|--host|--port|--timeout|-H|--header|--*-port|--*-address|--address|--max-*|--call-timeout|--docker-host|--node|--python|--npm)
      return ;;
  esac

  local flags
  case "$command" in
    serve)
      flags="--config --print-config --management-address --management-port --address --http-port --coap-port
             --grpc-port --state-dir --backend --docker-host --runtime-images --sandbox --log-level --max-body-bytes
             --max-upload-bytes --call-timeout --runtimes-dir --binary-handler --node --python --npm --help" ;;
    deploy) flags="--name --runtime --env --threads --var --memory-mb --cpus --egress --min-instances --max-instances
                   --target-in-flight --idle-seconds --timeout --concurrency --queue --quiet --progress --url --token
                   --help" ;;
    list|ls) flags="--json --quiet --url --token --help" ;;
    invoke) flags="--data --file --data-file --protocol --endpoint --url --port --timeout --max-body-bytes --async
                   --header --help" ;;
    delete|rm) flags="--url --token --help" ;;
    logs) flags="--follow -f --url --token --help" ;;
    wipe) flags="--yes --url --token --help" ;;
  esac

  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ "$command" == deploy ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
  elif [[ "$command" == invoke || "$command" == delete || "$command" == rm || "$command" == logs ]]; then
    COMPREPLY=($(compgen -W "$(_tinyfaas_functions)" -- "$cur"))
  fi
}

complete -F _tinyfaas tinyfaas
