# Builds a go function inside the install sandbox; the daemon runs it
# (src/manager/dependency_installer.cpp) with /bin/sh in /tmp/build, a
# writable copy of the upload, as: build.sh CACHE_FD
#
# It compiles the function's package main together with tinyfaas_main.go
# into one static binary, .tinyfaas-handler in the function's folder (what
# the instance runs), and writes what the build added to its caches as a
# zip (build/... and mod/...) to descriptor CACHE_FD. The folder keeps the
# upload's own go.mod and go.sum: the build works on a copy.
#
# The daemon sets the environment (nothing of the upload's is read):
#   TINYFAAS_GO  the toolchain;  GOCACHE, GOMODCACHE  under /tmp/caches;
#   GOTOOLCHAIN=local (go.mod's toolchain line downloads nothing),
#   CGO_ENABLED=0 (no C compiler, no cgo code), GOFLAGS empty, GOENV=off,
#   GOWORK=off, GOPROXY (off on an offline node);
# and binds the caches it keeps for this upload's owner read-only at
# /opt/tinyfaas/gocache/LAYER/{build,mod}. Nothing here runs code of the
# upload: `go build` without cgo compiles and links only.
set -eu
cache_out=$1
function_dir=$(pwd)
handler=.tinyfaas-handler
go=$TINYFAAS_GO

# The caches: each read-only layer linked file by file into the writable
# cache folders; every file the build writes there afterwards is new.
mkdir -p "$GOCACHE" "$GOMODCACHE"
for layer in /opt/tinyfaas/gocache/*; do
  for kind in build mod; do
    target=$GOCACHE
    [ "$kind" = mod ] && target=$GOMODCACHE
    if [ -d "$layer/$kind" ]; then cp -Rs --remove-destination "$layer/$kind/." "$target/"; fi
  done
done
touch /tmp/caches/.started

rm -rf /tmp/gobuild "./$handler"
cp -R . /tmp/gobuild
cd /tmp/gobuild
cp /opt/tinyfaas/go/tinyfaas_main.go ./tinyfaas_main.go

# A go line newer than the toolchain: Go 1.21 and later refuse to build
# with GOTOOLCHAIN=local, so the build copy asks for the toolchain's own
# version instead (the code still has to compile with it). Toolchains
# before 1.21 read only "go 1.N" and know no toolchain or godebug lines.
have=$(cd / && "$go" env GOVERSION)
have=${have#go}
have_minor=$(printf '%s\n' "$have" | sed -n -E 's/^([0-9]+\.[0-9]+).*/\1/p')
want=$(sed -n -E 's/^[[:space:]]*go[[:space:]]+([0-9][0-9A-Za-z.]*).*/\1/p' go.mod | head -n 1)
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }
if [ -n "$have_minor" ] && [ -n "$want" ]; then
  target=$want
  if newer "$want" "$have"; then target=$have_minor; fi
  if newer 1.21 "$have_minor"; then
    target=$(printf '%s\n' "$target" | sed -n -E 's/^([0-9]+\.[0-9]+).*/\1/p')
    sed -i -E -e '/^[[:space:]]*toolchain[[:space:]]/d' -e '/^[[:space:]]*godebug[[:space:]]*\(/,/^[[:space:]]*\)/d' \
      -e '/^[[:space:]]*godebug[[:space:]]/d' go.mod
  fi
  if [ "$target" != "$want" ]; then
    echo "tinyfaas: go.mod asks for go $want; building with go $have as go $target"
    sed -i -E "s/^([[:space:]]*go[[:space:]]+)[0-9][0-9A-Za-z.]*/\\1$target/" go.mod
  fi
fi

# vendor/ builds offline; otherwise missing requirements and go.sum lines
# come from GOPROXY. -v names each package compiled (in the deploy's
# /logs): what the caches did not have.
mode=-mod=mod
if [ -f vendor/modules.txt ]; then mode=-mod=vendor; fi
"$go" build -v "$mode" -trimpath -ldflags='-s -w' -o "$function_dir/$handler" .

cd /tmp/caches
find build mod -type f -newer .started > /tmp/new-cache-files
if [ -s /tmp/new-cache-files ]; then zip -q -1 -@ - < /tmp/new-cache-files >&"$cache_out"; fi
