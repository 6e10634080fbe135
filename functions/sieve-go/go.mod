module main

go 1.19
