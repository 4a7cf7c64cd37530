#!/usr/bin/env bash
# Copyright 2026 The kubectl-meshcert Authors.
# SPDX-License-Identifier: Apache-2.0
#
# docker-up.sh installs Debian's docker.io when dockerd is missing and starts
# dockerd when no engine answers. Where the capability bounding set lacks
# CAP_SYS_RESOURCE, dockerd's default runtime is the meshcert-runc wrapper.
# Only a dockerd started here is recorded in the PID file that docker-down.sh
# reads. It also raises the host's inotify limits to what kind's nodes need.
# Usage: docker-up.sh <wrapper binary> <state dir>
set -euo pipefail

wrapper=$1
state=$2
mkdir -p "$state"

# Every kind node runs its own kubelet, kube-proxy and containerd, each with
# inotify instances; at the host's default of 128 per user, four nodes (the
# bound profile's three and the legacy one) leave kube-proxy failing with
# "too many open files". kind's known-issues page asks for these limits.
raise_limit() {
	local file=/proc/sys/fs/inotify/$1 want=$2
	if [[ -w $file ]] && (( $(cat "$file") < want )); then
		echo "$want" >"$file"
		echo "docker-up: raised fs.inotify.$1 to $want for kind's nodes"
	elif (( $(cat "$file") < want )); then
		echo "docker-up: warning: fs.inotify.$1 is $(cat "$file"), below the $want kind's nodes need; raise it with sysctl" >&2
	fi
}
raise_limit max_user_instances 512
raise_limit max_user_watches 524288

if docker info >/dev/null 2>&1; then
	echo "docker-up: an engine already answers; leaving it as it is"
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	echo "docker-up: installing Debian's docker.io"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

args=(--host unix:///var/run/docker.sock)
bounding=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
# CAP_SYS_RESOURCE is bit 24.
if (( (16#$bounding >> 24 & 1) == 0 )); then
	echo "docker-up: CAP_SYS_RESOURCE is not in the bounding set; runc runs through $wrapper"
	args+=(--add-runtime "meshcert-runc=$wrapper" --default-runtime meshcert-runc)
fi

# A dockerd killed with its session leaves its PID file; a new one refuses to
# start if that PID now belongs to another process.
if [[ -f /var/run/docker.pid ]] && ! grep -qs '^dockerd$' "/proc/$(cat /var/run/docker.pid)/comm"; then
	rm -f /var/run/docker.pid
fi
nohup dockerd "${args[@]}" >"$state/dockerd.log" 2>&1 &
echo $! >"$state/dockerd.pid"
for _ in $(seq 60); do
	if docker info >/dev/null 2>&1; then
		echo "docker-up: dockerd $(cat "$state/dockerd.pid") is up (log: $state/dockerd.log)"
		exit 0
	fi
	if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
		break
	fi
	sleep 1
done
echo "docker-up: dockerd did not answer; its log follows" >&2
tail -20 "$state/dockerd.log" >&2
exit 1
