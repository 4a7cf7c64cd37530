#!/usr/bin/env bash
# Copyright 2026 The kubectl-meshcert Authors.
# SPDX-License-Identifier: Apache-2.0
#
# build-node-image.sh builds the kind node image offline, from Debian packages,
# from Kubernetes, etcd and CoreDNS compiled out of the Go module proxy, and
# from kind's own images/base/files. It is skipped when an image built from
# the same inputs exists. Usage: build-node-image.sh <image> <cache dir>
set -euo pipefail

image=$1
cache=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kube_version=v1.34.4
kube_minor=34
packages=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins,e2fsprogs
export GOFLAGS=-mod=mod CGO_ENABLED=0

log() { echo "kind-node-image: $*"; }
# quietly runs a command, and shows its output only when it fails (docker
# build's legacy builder warns on every call).
quietly() {
	local out
	if ! out=$("$@" 2>&1); then
		echo "$out" >&2
		return 1
	fi
}
started=$SECONDS

kind_dir=$(cd "$repo" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
kind_version=$(cd "$repo" && go list -m -f '{{.Version}}' sigs.k8s.io/kind)
inputs=$( { cat "$0" "$here/Dockerfile" "$here/10-bridge.conflist" "$here/go.mod" "$here/go.sum" "$here"/cmd/*/*.go;
	echo "$packages $kind_version $kube_version"; } | sha256sum | cut -c1-16)
if [[ $(docker image inspect -f '{{index .Config.Labels "io.meshcert.inputs"}}' "$image" 2>/dev/null) == "$inputs" ]]; then
	log "$image is up to date (inputs $inputs)"
	exit 0
fi
log "building $image (inputs $inputs, kind $kind_version)"
mkdir -p "$cache/bin"

# Kubernetes, etcd, crictl and pause, from the nested module; coredns at the
# version kubeadm asks for, from its own module.
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1"
kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean"
kube_ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
(cd "$here" && go build -trimpath -ldflags "$kube_ldflags" -o "$cache/bin/" \
	k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy \
	sigs.k8s.io/cri-tools/cmd/crictl ./cmd/etcd ./cmd/pause)
log "components built ($((SECONDS - started)) s)"

mapfile -t wanted < <("$cache/bin/kubeadm" config images list --kubernetes-version "$kube_version")
image_for() { printf '%s\n' "${wanted[@]}" | grep "/$1:" ; }
coredns_image=$(image_for coredns)
etcd_image=$(image_for etcd)
pause_image=$(image_for pause)
etcd_module=$(cd "$here" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
if [[ ${etcd_image##*:} != "${etcd_module#v}-0" ]]; then
	echo "kind-node-image: kubeadm wants $etcd_image but go.mod pins etcd $etcd_module; align them in $here/go.mod" >&2
	exit 1
fi
GOBIN="$cache/bin" GOFLAGS= go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@${coredns_image##*:}"
log "coredns built ($((SECONDS - started)) s)"

# The Debian rootfs, from the mirror that this host's apt uses.
rootfs_key=$(echo "bookworm $packages" | sha256sum | cut -c1-12)
rootfs_image=meshcert/kind-rootfs:$rootfs_key
iptables_image=meshcert/kind-iptables:$rootfs_key
if ! docker image inspect "$rootfs_image" "$iptables_image" >/dev/null 2>&1; then
	if ! command -v debootstrap >/dev/null; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
	[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
	rootfs=$cache/rootfs
	rm -rf "$rootfs"
	log "debootstrap bookworm from the host's apt mirror"
	debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ tail -20 "$cache/debootstrap.log" >&2; exit 1; }
	rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
	tar -C "$rootfs" -c . | docker import - "$rootfs_image" >/dev/null
	# kube-proxy's image needs iptables and its libraries, not the node's runtimes.
	tar -C "$rootfs" -c --exclude='./usr/bin/containerd*' --exclude=./usr/bin/ctr --exclude=./usr/sbin/runc \
		--exclude=./usr/lib/cni --exclude=./usr/share --exclude=./var . | docker import - "$iptables_image" >/dev/null
	rm -rf "$rootfs"
	log "rootfs $rootfs_image imported ($((SECONDS - started)) s)"
fi

# The node's base: rootfs, kind's files, the kubelet and kubeadm.
context=$cache/context
rm -rf "$context" && mkdir -p "$context/bin"
cp -r "$kind_dir/images/base/files" "$context/kind" && chmod -R u+w "$context/kind"
cp "$here/Dockerfile" "$here/10-bridge.conflist" "$context/"
cp "$cache"/bin/{kubeadm,kubelet,kubectl,crictl} "$context/bin/"
quietly docker build -q --label io.meshcert.inputs="$inputs" -t meshcert/kind-node-base:build --build-arg ROOTFS="$rootfs_image" \
	--build-arg KUBE_VERSION="$kube_version" --build-arg PAUSE_IMAGE="$pause_image" "$context"
log "node base built ($((SECONDS - started)) s)"

# The images that kubeadm runs, each FROM scratch but kube-proxy, which needs
# iptables from the rootfs.
images=()
component_image() { # name binary base entrypoint...
	local name=$1 binary=$2 base=$3 dir=$cache/images/$1
	shift 3
	rm -rf "$dir" && mkdir -p "$dir"
	cp "$cache/bin/$binary" "$dir/"
	local entrypoint
	entrypoint=$(printf '"%s",' "$@")
	printf 'FROM %s\nCOPY %s /usr/local/bin/%s\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENTRYPOINT [%s]\n' \
		"$base" "$binary" "$binary" "${entrypoint%,}" >"$dir/Dockerfile"
	quietly docker build -q --label io.meshcert.inputs="$inputs" -t "$name" "$dir"
	images+=("$name")
}
for component in kube-apiserver kube-controller-manager kube-scheduler; do
	component_image "$(image_for "$component")" "$component" scratch "/usr/local/bin/$component"
done
component_image "$(image_for kube-proxy)" kube-proxy "$iptables_image" /usr/local/bin/kube-proxy
component_image "$etcd_image" etcd scratch /usr/local/bin/etcd
component_image "$coredns_image" coredns scratch /usr/local/bin/coredns
component_image "$pause_image" pause scratch /usr/local/bin/pause
log "component images built ($((SECONDS - started)) s)"

# Import them into the node's containerd, as kind's own node-image build does.
builder=meshcert-kind-node-build-$$
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
docker run -d --privileged --entrypoint=sleep --name "$builder" meshcert/kind-node-base:build infinity >/dev/null
docker exec "$builder" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
for _ in $(seq 30); do docker exec "$builder" ctr version >/dev/null 2>&1 && break; sleep 1; done
docker save "${images[@]}" | docker exec -i "$builder" ctr --namespace=k8s.io images import \
	--label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
docker exec "$builder" ctr --namespace=k8s.io images list -q | sort >"$cache/imported.txt"
for want in "${images[@]}"; do
	grep -qx "$want" "$cache/imported.txt" || { echo "kind-node-image: $want was not imported" >&2; exit 1; }
done
docker exec "$builder" pkill containerd
for _ in $(seq 30); do docker exec "$builder" pgrep containerd >/dev/null || break; sleep 1; done
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
	--change "LABEL io.meshcert.inputs=$inputs" "$builder" "$image" >/dev/null
# Earlier builds, now untagged, take a gigabyte each time.
docker image prune -f --filter label=io.meshcert.inputs >/dev/null
log "$image built in $((SECONDS - started)) s"
