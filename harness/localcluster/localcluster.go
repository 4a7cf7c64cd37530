// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package localcluster starts and stops the embedded control plane: a real
// kube-apiserver with embedded etcd and the service-account, tokens and
// garbage-collector controllers, run by the meshcert-controlplane program
// (harness/controlplane, its own Go module) as a child process.
//
// The child shuts down when its standard input closes. Stop closes it; if
// the parent dies instead, the kernel closes it, so no cluster outlives the
// test binary or the harness that started it.
package localcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Profile selects how the cluster issues service-account tokens.
type Profile string

const (
	// ProfileBound is a current cluster: TokenRequest issues audience-bound,
	// expiring tokens, optionally bound to a pod.
	ProfileBound Profile = "bound"
	// ProfileLegacy is a cluster from before trustworthy JWTs: TokenRequest
	// answers 404 and only secret-based legacy tokens exist.
	ProfileLegacy Profile = "legacy"
)

// Profiles lists both profiles.
var Profiles = []Profile{ProfileBound, ProfileLegacy}

// BinaryEnv names the environment variable that points at the
// meshcert-controlplane program, overriding the search.
const BinaryEnv = "MESHCERT_CONTROLPLANE"

// BinaryName is the program's file name under bin/.
const BinaryName = "meshcert-controlplane"

// DefaultIssuer is the service-account issuer of a local cluster, as on
// kubeadm clusters.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// ErrBinaryNotFound is returned when the control-plane program is missing.
var ErrBinaryNotFound = errors.New(BinaryName + " not found: build it with `make controlplane` (or `make build`) at the repository root, or set " + BinaryEnv + " to its path")

// Options configure Start.
type Options struct {
	// Profile defaults to ProfileBound.
	Profile Profile
	// Issuer defaults to DefaultIssuer.
	Issuer string
	// Binary is the meshcert-controlplane program; empty means search
	// $MESHCERT_CONTROLPLANE, then bin/ in this directory and its parents,
	// then $PATH.
	Binary string
	// LogWriter receives the control plane's log; nil keeps it in a file in
	// the cluster's directory, removed on Stop.
	LogWriter io.Writer
	// ReadyTimeout defaults to 90 seconds.
	ReadyTimeout time.Duration
}

// Cluster is a running local control plane.
type Cluster struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Host is the API server's URL.
	Host string
	// Issuer is the service-account token issuer.
	Issuer  string
	Profile Profile
	// UserToken is a static bearer token of user "alice" (group
	// "developers"): authenticated by the API server, yet no service account.
	UserToken string
	// SigningKeyFile is the service-account signing key. Tests use it to mint
	// tokens the API server trusts but would never issue, such as expired ones.
	SigningKeyFile string

	dir     string
	binary  string
	opts    Options
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logFile *os.File
	exited  chan struct{}
	stopped sync.Once
	stopErr error
}

type readyLine struct {
	Profile    string `json:"profile"`
	Host       string `json:"host"`
	Kubeconfig string `json:"kubeconfig"`
	Issuer     string `json:"issuer"`
	UserToken  string `json:"userToken"`
	SigningKey string `json:"signingKey"`
}

// Start runs a new control plane and returns once it serves requests, the
// default ServiceAccount exists and the controllers run. Cancelling ctx
// aborts the start; it does not stop a started cluster: call Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Profile == "" {
		opts.Profile = ProfileBound
	}
	if opts.Profile != ProfileBound && opts.Profile != ProfileLegacy {
		return nil, fmt.Errorf("unknown profile %q: use %q or %q", opts.Profile, ProfileBound, ProfileLegacy)
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	binary, err := findBinary(opts.Binary)
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "meshcert-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, Profile: opts.Profile}
	ok := false
	defer func() {
		if !ok {
			_ = c.Stop()
		}
	}()

	if opts.LogWriter == nil {
		if c.logFile, err = os.Create(filepath.Join(dir, "controlplane.log")); err != nil {
			return nil, err
		}
	}

	c.binary, c.opts = binary, opts
	if err := c.launch(ctx, 0); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// launch runs the control-plane program on c's directory, its API server on
// port (0: a free one), and returns once it printed its ready line.
func (c *Cluster) launch(ctx context.Context, port int) error {
	opts := c.opts
	logs := opts.LogWriter
	if logs == nil {
		logs = c.logFile
	}
	var err error
	c.exited = make(chan struct{})
	c.cmd = exec.Command(c.binary,
		"--profile="+string(opts.Profile),
		"--dir="+c.dir,
		"--issuer="+opts.Issuer,
		"--port="+strconv.Itoa(port),
	)
	c.cmd.Stderr = logs
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.binary, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()

	lines := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		if scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()

	var line string
	select {
	case l, open := <-lines:
		if !open {
			<-c.exited
			return fmt.Errorf("the control plane exited before it was ready (%s): %s", c.cmd.ProcessState, c.tailLog())
		}
		line = l
	case <-time.After(opts.ReadyTimeout):
		return fmt.Errorf("the control plane was not ready within %s: %s", opts.ReadyTimeout, c.tailLog())
	case <-ctx.Done():
		return ctx.Err()
	}

	var ready readyLine
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		return fmt.Errorf("the control plane printed %q, not its ready line: %w", line, err)
	}
	if c.Config != nil {
		// Started again: clients made before keep working.
		if ready.Host != c.Host {
			return fmt.Errorf("the control plane came back at %s, not at %s", ready.Host, c.Host)
		}
		return nil
	}
	c.Host, c.Kubeconfig, c.Issuer = ready.Host, ready.Kubeconfig, ready.Issuer
	c.UserToken, c.SigningKeyFile = ready.UserToken, ready.SigningKey
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return fmt.Errorf("load the control plane's kubeconfig: %w", err)
	}
	c.Config.QPS, c.Config.Burst = 1000, 2000
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	return nil
}

// Restart kills the control-plane process, as a crash of the API server's
// machine would, and starts it again on the same directory: the same etcd
// data, keys and port, so that every client and token stays valid. It
// returns once the API server serves again. (A graceful stop waits up to
// 20 s for the API server's watches to drain; a kill loses nothing etcd
// wrote, since the kernel keeps what a killed process wrote.)
func (c *Cluster) Restart(ctx context.Context) error {
	port, err := strconv.Atoi(c.Host[strings.LastIndexByte(c.Host, ':')+1:])
	if err != nil {
		return fmt.Errorf("the API server's address %s has no port: %w", c.Host, err)
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return c.launch(ctx, port)
}

// stopProcess closes the program's standard input, which shuts it down
// (the API server before etcd), and waits for it to exit.
func (c *Cluster) stopProcess() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.stdin.Close()
	select {
	case <-c.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("the control plane did not stop within 30s and was killed")
	}
}

// Dir is the cluster's working directory. It holds the kubeconfig and the
// log, and is removed by Stop.
func (c *Cluster) Dir() string { return c.dir }

// Stop shuts the control plane down (the API server before etcd), waits for
// the process to exit and removes its directory. It is safe to call more
// than once.
func (c *Cluster) Stop() error {
	c.stopped.Do(func() {
		c.stopErr = c.stopProcess()
		if c.logFile != nil {
			_ = c.logFile.Close()
		}
		if err := os.RemoveAll(c.dir); err != nil && c.stopErr == nil {
			c.stopErr = err
		}
	})
	return c.stopErr
}

// PID is the control plane's process ID.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

func (c *Cluster) tailLog() string {
	if c.logFile == nil {
		return "see the log writer"
	}
	data, err := os.ReadFile(c.logFile.Name())
	if err != nil {
		return err.Error()
	}
	const tail = 2000
	if len(data) > tail {
		data = data[len(data)-tail:]
	}
	return "last log lines:\n" + string(data)
}

func findBinary(explicit string) (string, error) {
	if explicit != "" {
		return checkExecutable(explicit)
	}
	if env := os.Getenv(BinaryEnv); env != "" {
		return checkExecutable(env)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "bin", BinaryName)
			if _, err := os.Stat(candidate); err == nil {
				return checkExecutable(candidate)
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(dir, "harness", "controlplane", "go.mod")); err == nil {
					break // the repository root: no need to look above it
				}
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if path, err := exec.LookPath(BinaryName); err == nil {
		return path, nil
	}
	return "", ErrBinaryNotFound
}

func checkExecutable(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w (looked at %s)", ErrBinaryNotFound, path)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file: rebuild it with `make controlplane`", path)
	}
	return filepath.Abs(path)
}
