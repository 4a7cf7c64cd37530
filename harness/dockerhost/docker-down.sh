#!/usr/bin/env bash
# Copyright 2026 The kubectl-meshcert Authors.
# SPDX-License-Identifier: Apache-2.0
#
# docker-down.sh stops the dockerd that docker-up.sh started, by its PID, and
# nothing else. Usage: docker-down.sh <state dir>
set -euo pipefail

pidfile=$1/dockerd.pid
if [[ ! -f $pidfile ]]; then
	echo "docker-down: docker-up started no dockerd; nothing to stop"
	exit 0
fi
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm"; then
	kill -TERM "$pid"
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	echo "docker-down: stopped dockerd $pid"
fi
rm -f "$pidfile"
