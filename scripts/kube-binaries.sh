#!/usr/bin/env bash
# Build the real Kubernetes control-plane binaries (kube-apiserver, kube-controller-manager, kube-scheduler) and Go
# kubemark's hollow node (cmd/kubemark) from the Go module k8s.io/kubernetes, with plain `go build`, into a cache:
#
#   scripts/kube-binaries.sh [VERSION]      default VERSION: the one pinned in tools/kube-binaries/go.mod
#
# Output: ${KUBEMARK_KUBE_CACHE:-~/.cache/kubemark/kube}/<VERSION>/bin/{kube-apiserver,kube-controller-manager,
# kube-scheduler,kubemark} plus a stamp file `VERSION`. A second call with the binaries present and the stamp
# matching is a no-op. Go's module cache and build cache are reused (GOMODCACHE/GOCACHE as usual).
#
# k8s.io/kubernetes's own go.mod replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with
# ./staging/... paths, which the module zip does not contain; a dependency's replaces are ignored anyway, so our
# module (tools/kube-binaries/go.mod) replaces each of them with the matching published v0.X.Y. For another
# VERSION the same module is generated from that release's go.mod into <cache>/<VERSION>/module.
#
# Env: KUBEMARK_KUBE_CACHE (cache root), GO (go command, default `go`), KUBE_BUILD_NICE (default 19),
# KUBE_BINARIES (space-separated subset to build, default all four), FORCE=1 (rebuild even when stamped).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
tmpl_dir="$repo/tools/kube-binaries"

GO=${GO:-go}
nice_level=${KUBE_BUILD_NICE:-19}
required_version() { awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$1"; }
default_version=$(required_version "$tmpl_dir/go.mod")
version=${1:-$default_version}
case "$version" in
  v1.*.*) ;;
  1.*.*) version="v$version" ;;
  *) echo "kube-binaries: VERSION must look like v1.37.2 (got '$version')" >&2; exit 2 ;;
esac
cache_root=${KUBEMARK_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubemark/kube}
out_dir="$cache_root/$version"
bin_dir="$out_dir/bin"
stamp="$bin_dir/VERSION"
binaries=${KUBE_BINARIES:-"kube-apiserver kube-controller-manager kube-scheduler kubemark"}

all_present() {
  local b
  for b in $binaries; do [ -x "$bin_dir/$b" ] || return 1; done
  [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$version" ]
}

if [ -z "${FORCE:-}" ] && all_present; then
  echo "kube-binaries: $version already built in $bin_dir"
  exit 0
fi

command -v "$GO" >/dev/null 2>&1 || { echo "kube-binaries: no Go toolchain ('$GO' not on PATH)" >&2; exit 2; }
start=$(date +%s)
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export CGO_ENABLED=${CGO_ENABLED:-0}

# The module to build in: the checked-in one for the pinned version, else generated from the release's go.mod.
if [ "$version" = "$default_version" ]; then
  mod_dir="$tmpl_dir"
else
  mod_dir="$out_dir/module"
  mkdir -p "$mod_dir"
  if [ ! -f "$mod_dir/go.sum" ] || [ "$(required_version "$mod_dir/go.mod")" != "$version" ]; then
    echo "kube-binaries: generating $mod_dir/go.mod for k8s.io/kubernetes@$version"
    "$repo/tools/kube-binaries/gen-gomod.sh" "$version" > "$mod_dir/go.mod.new"
    mv "$mod_dir/go.mod.new" "$mod_dir/go.mod"
    rm -f "$mod_dir/go.sum"
    (cd "$mod_dir" && nice -n "$nice_level" "$GO" mod tidy)
  fi
fi

# Does the installed Go build this release? (its go.mod `go` line; GOTOOLCHAIN may fetch a newer one.)
need_go=$(awk '$1 == "go" {print $2; exit}' "$mod_dir/go.mod")
have_go=$("$GO" env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  echo "kube-binaries: $version needs Go >= $need_go, installed is $have_go; GOTOOLCHAIN=${GOTOOLCHAIN:-auto} decides" >&2
fi

# Version stamp, as hack/lib/version.sh sets it (client-go's and component-base's version packages).
IFS=. read -r major minor _patch <<<"${version#v}"
# The release's own time (from the module proxy), not now: same flags, same binaries, so a rebuild is a cache hit.
build_date=$(cd "$mod_dir" && "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=module-$version"
done

mkdir -p "$bin_dir"
rm -f "$stamp"
pkgs=()
for b in $binaries; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
echo "kube-binaries: building $binaries at $version into $bin_dir (go $have_go, nice $nice_level)"
(cd "$mod_dir" && nice -n "$nice_level" "$GO" build -trimpath -ldflags "$ldflags" -o "$bin_dir/" "${pkgs[@]}")
for b in $binaries; do [ -x "$bin_dir/$b" ] || { echo "kube-binaries: $b was not built" >&2; exit 1; }; done
{ echo "$version"; echo "built $(date -u +%FT%TZ) with $("$GO" env GOVERSION) in $(( $(date +%s) - start ))s"; } > "$stamp"
echo "kube-binaries: done in $(( $(date +%s) - start ))s: $("$bin_dir/kube-apiserver" --version)"
