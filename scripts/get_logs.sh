#!/bin/bash
# get_logs.sh [NAME]: same as logs.sh, kept for upstream users' habits.
exec "$(dirname "$0")/logs.sh" "$@"
