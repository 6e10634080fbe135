#!/bin/sh
# Copies the input (stdin) to the output (stdout).
exec cat
