// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package dockerhost adapts a Docker engine to hosts that run it inside a
// sandbox: it holds the logic of the runc wrapper that dockerd uses as its
// default runtime where the capability bounding set is narrower than Docker
// assumes.
package dockerhost

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capabilityNumbers maps the OCI names of Linux capabilities to their bit in a
// capability set.
var capabilityNumbers = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT,
	"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// BoundingSet reads the capability bounding set of this process from a
// /proc/<pid>/status document.
func BoundingSet(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if value, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd line in the process status")
}

// process is the part of an OCI process that the wrapper changes. Every other
// field is carried through untouched.
type process struct {
	Capabilities map[string][]string `json:"capabilities,omitempty"`
	OOMScoreAdj  *int                `json:"oomScoreAdj,omitempty"`
}

// AdjustProcess rewrites one OCI process document (the "process" object of a
// bundle's config.json, or runc exec's --process file) so that runc can
// apply it: capabilities outside the bounding set are dropped, and a negative
// oomScoreAdj, which needs CAP_SYS_RESOURCE, is raised to 0. It reports what
// it changed.
func AdjustProcess(raw json.RawMessage, bounding uint64) (json.RawMessage, []string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, nil, fmt.Errorf("parse OCI process: %w", err)
	}
	var proc process
	if err := json.Unmarshal(raw, &proc); err != nil {
		return nil, nil, fmt.Errorf("parse OCI process: %w", err)
	}
	var changes []string
	dropped := map[string]bool{}
	for set, names := range proc.Capabilities {
		kept := names[:0:0]
		for _, name := range names {
			bit, known := capabilityNumbers[name]
			if known && bounding&(1<<bit) != 0 {
				kept = append(kept, name)
				continue
			}
			dropped[name] = true
		}
		proc.Capabilities[set] = kept
	}
	if len(dropped) > 0 {
		for _, name := range slices.Sorted(maps.Keys(dropped)) {
			changes = append(changes, "dropped "+name)
		}
		encoded, err := json.Marshal(proc.Capabilities)
		if err != nil {
			return nil, nil, err
		}
		fields["capabilities"] = encoded
	}
	if proc.OOMScoreAdj != nil && *proc.OOMScoreAdj < 0 {
		changes = append(changes, fmt.Sprintf("oomScoreAdj %d raised to 0", *proc.OOMScoreAdj))
		fields["oomScoreAdj"] = json.RawMessage("0")
	}
	if len(changes) == 0 {
		return raw, nil, nil
	}
	out, err := json.Marshal(fields)
	return out, changes, err
}

// AdjustBundleConfig applies AdjustProcess to the process of a bundle's
// config.json.
func AdjustBundleConfig(raw []byte, bounding uint64) ([]byte, []string, error) {
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, nil, fmt.Errorf("parse OCI config: %w", err)
	}
	proc, ok := spec["process"]
	if !ok {
		return raw, nil, nil
	}
	adjusted, changes, err := AdjustProcess(proc, bounding)
	if err != nil || len(changes) == 0 {
		return raw, nil, err
	}
	spec["process"] = adjusted
	out, err := json.Marshal(spec)
	return out, changes, err
}

// Invocation is what the wrapper needs from runc's command line.
type Invocation struct {
	// Bundle is the bundle directory of "create" or "run", when given.
	Bundle string
	// ProcessFile is the --process document of "exec", when given.
	ProcessFile string
}

// ParseInvocation finds the bundle and process file in runc arguments. A
// "create" or "run" without --bundle uses the working directory, as runc does.
func ParseInvocation(args []string) Invocation {
	var inv Invocation
	command := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		value := func(flag string) (string, bool) {
			if v, ok := strings.CutPrefix(arg, flag+"="); ok {
				return v, true
			}
			if arg == flag && i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		if command == "" && !strings.HasPrefix(arg, "-") {
			command = arg
			continue
		}
		if command == "" {
			// Global flags that take a value: skip it so that it is not read as the command.
			for _, flag := range []string{"--root", "--log", "--log-format", "--criu", "--rootless"} {
				if _, ok := value(flag); ok {
					break
				}
			}
			continue
		}
		if v, ok := value("--bundle"); ok {
			inv.Bundle = v
		} else if v, ok := value("-b"); ok {
			inv.Bundle = v
		} else if v, ok := value("--process"); ok {
			inv.ProcessFile = v
		} else if v, ok := value("-p"); ok {
			inv.ProcessFile = v
		}
	}
	if inv.Bundle == "" && (command == "create" || command == "run") {
		if wd, err := os.Getwd(); err == nil {
			inv.Bundle = wd
		}
	}
	return inv
}
