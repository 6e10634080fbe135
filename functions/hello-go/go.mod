module main

go 1.22
