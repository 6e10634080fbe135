// Only for `go test` of the handler main; functions are built with their own go.mod.
module tinyfaashandler

go 1.19
