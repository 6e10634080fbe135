#!/bin/sh
# Prints the value of the environment variable named by the input.
printenv "$(cat)"
exit 0
