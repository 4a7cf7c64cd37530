// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
)

// component is a CA replica or a node agent as a pod would run it: in this
// process, or as the project's program.
type component interface {
	// MonitoringAddr is where it serves /metrics.
	MonitoringAddr() string
	// Kill stops it at once, as a crashed pod: a CA replica keeps its
	// leader lease until the lease expires.
	Kill()
}

// caReplica is one replica of the CA's Deployment.
type caReplica struct {
	component
	identity string
	addr     string
}

type inProcessCA struct{ *ca.Server }

func (c inProcessCA) Kill() { c.Stop() }

type inProcessAgent struct{ *agent.Agent }

func (a inProcessAgent) Kill() { a.Stop() }

// process is a mesh program run by the provider.
type process struct {
	cmd        *exec.Cmd
	monitoring string
	exited     chan struct{}
}

func (p *process) MonitoringAddr() string { return p.monitoring }

// Kill sends SIGKILL and waits for the process to end.
func (p *process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// PID is the program's process ID.
func (p *process) PID() int { return p.cmd.Process.Pid }

// startProcess runs binary with args, its output appended to logFile, and
// returns once its /readyz at monitoring answers 200.
func startProcess(ctx context.Context, binary string, args []string, monitoring, logFile string) (*process, error) {
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The program must not outlive the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &process{cmd: cmd, monitoring: monitoring, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	// Generous: fifty agents restarted at once on two cores, during a
	// mass start, have been seen to take more than 30 s; a program that
	// fails exits, and that ends the wait at once.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("%s exited (%s): see %s", filepath.Base(binary), cmd.ProcessState, logFile)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+monitoring+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s did not become ready: %w", filepath.Base(binary), err)
	}
	return p, nil
}

// Ports for the provider's programs come from below the kernel's ephemeral
// range (32768 and up on Linux), which it never hands to a socket bound to
// port 0 nor to an outgoing connection, and each is handed out once per
// process: a port taken from the ephemeral range and closed again may be
// handed to the next caller, or to another program, before the program it
// was meant for binds it. The start is random, so that test processes
// running side by side seldom meet.
const firstPort, lastPort = 20000, 32767

var ports = struct {
	sync.Mutex
	next int
}{next: firstPort + rand.IntN(lastPort-firstPort)}

// FreeAddr returns a loopback address no listener holds now and that no
// other caller in this process has been given, for a program of the
// harness's own to listen on.
func FreeAddr() (string, error) {
	ports.Lock()
	defer ports.Unlock()
	for range lastPort - firstPort {
		port := ports.next
		ports.next = firstPort + (ports.next-firstPort+1)%(lastPort-firstPort)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return ln.Addr().String(), nil
	}
	return "", fmt.Errorf("no free port between %d and %d on 127.0.0.1", firstPort, lastPort)
}

// startCAReplica starts the n-th replica of the CA, listening on its own
// loopback address behind the provider's Service.
func (p *Provider) startCAReplica(ctx context.Context, n int) (*caReplica, error) {
	identity := "local-ca-" + strconv.Itoa(n)
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if p.binaries == "" {
		cfg := p.caCfg
		cfg.Listen, cfg.MonitoringListen, cfg.Identity = addr, "127.0.0.1:0", identity
		// Stopping a replica is its pod dying: the lease stays taken until
		// it expires, the longest a crash keeps leader work waiting.
		cfg.ReleaseLeaseOnStop = false
		srv, err := ca.Start(p.ctx, cfg, p.as(mesh.CAName, nil))
		if err != nil {
			return nil, err
		}
		return &caReplica{component: inProcessCA{srv}, identity: identity, addr: srv.Addr()}, nil
	}
	proc, err := p.startCAProgram(ctx, identity, addr)
	if err != nil {
		return nil, err
	}
	return &caReplica{component: proc, identity: identity, addr: addr}, nil
}

// startCAProgram runs meshcert-ca with install's arguments followed by
// extra (a repeated flag takes its last value), listening on addr, acting
// as the CA's service account.
func (p *Provider) startCAProgram(ctx context.Context, identity, addr string, extra ...string) (*process, error) {
	monitoring, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	kubeconfig, err := p.ComponentKubeconfig(mesh.CAName)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, p.caArgs...), "--listen", addr, "--monitoring-listen", monitoring, "--identity", identity,
		"--kubeconfig", kubeconfig)
	return startProcess(ctx, filepath.Join(p.binaries, "meshcert-ca"), append(args, extra...), monitoring, filepath.Join(p.dir, identity+".log"))
}

// startAgent starts the i-th node's agent on its socket.
func (p *Provider) startAgent(ctx context.Context, i int) (component, error) {
	cfg := p.agentCfg
	cfg.SocketPath, cfg.NodeName, cfg.Kube, cfg.CAAddress = p.nodeSocket(i), nodeName(i), p.agentConfig(i), p.caFronts[i]
	if p.binaries == "" {
		cfg.Logger = p.log.With("component", "agent", "node", cfg.NodeName)
		started, err := agent.Start(p.ctx, cfg)
		if err != nil {
			return nil, err
		}
		return inProcessAgent{started}, nil
	}
	monitoring, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	kubeconfig, err := p.writeKubeconfig(p.agentConfig(i), mesh.AgentName+"-"+cfg.NodeName)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"serve"}, p.agentArgs...),
		"--sds-socket", cfg.SocketPath, "--ca-address", cfg.CAAddress, "--ca-server-name", cfg.CAServerName,
		"--ca-root-file", cfg.CARootFile, "--node-name", cfg.NodeName, "--monitoring-listen", monitoring,
		"--ca-retry-base", cfg.RetryBase.String(), "--ca-retry-max", cfg.RetryMax.String(), "--kubeconfig", kubeconfig)
	return startProcess(ctx, filepath.Join(p.binaries, "meshcert-agent"), args, monitoring, filepath.Join(p.dir, "agent-"+cfg.NodeName+".log"))
}

// ComponentKubeconfig writes a kubeconfig that acts as component does (see
// ComponentConfig), for a program the provider runs.
func (p *Provider) ComponentKubeconfig(component string) (string, error) {
	config, err := p.ComponentConfig(context.Background(), component, "")
	if err != nil {
		return "", err
	}
	return p.writeKubeconfig(config, component)
}

// writeKubeconfig writes a kubeconfig that impersonates as config does,
// named name.
func (p *Provider) writeKubeconfig(config *rest.Config, name string) (string, error) {
	kubeconfig, err := clientcmd.LoadFromFile(p.cluster.Kubeconfig)
	if err != nil {
		return "", err
	}
	auth := kubeconfig.AuthInfos[kubeconfig.Contexts[kubeconfig.CurrentContext].AuthInfo]
	if auth == nil {
		return "", errors.New("the control plane's kubeconfig has no user for its current context")
	}
	auth.Impersonate, auth.ImpersonateUserExtra = config.Impersonate.UserName, config.Impersonate.Extra
	path := filepath.Join(p.dir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*kubeconfig, path)
}

// PIDs are the process IDs of the CA's replicas and of the node agents,
// by component, when they run as programs (WithBinaries); in-process
// components have none.
func (p *Provider) PIDs() map[string][]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := map[string][]int{}
	for _, r := range p.replicas {
		if proc, ok := r.component.(*process); ok {
			pids[mesh.CAName] = append(pids[mesh.CAName], proc.PID())
		}
	}
	for _, a := range p.agents {
		if proc, ok := a.(*process); ok {
			pids[mesh.AgentName] = append(pids[mesh.AgentName], proc.PID())
		}
	}
	return pids
}

// CAProcess is a meshcert-ca program started beside the CA's replicas.
type CAProcess struct {
	*process
	// Addr is its gRPC address.
	Addr string
}

// StartCAProcess starts one more meshcert-ca program with the arguments
// install gives the CA followed by extra (a repeated flag takes its last
// value), on addresses of its own and outside the CA's Service, for
// benchmarks that compare the CA's settings on one API server. It needs
// WithBinaries; the caller kills it.
func (p *Provider) StartCAProcess(ctx context.Context, identity string, extra ...string) (*CAProcess, error) {
	if p.binaries == "" {
		return nil, errors.New("a CA process needs the provider's programs: use WithBinaries")
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	proc, err := p.startCAProgram(ctx, identity, addr, extra...)
	if err != nil {
		return nil, err
	}
	return &CAProcess{process: proc, Addr: addr}, nil
}
