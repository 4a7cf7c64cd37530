// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kind

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/badtoken"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/harness/workload"
)

// Ports and paths of the workload containers.
const (
	mtlsPort    = 8443
	controlPort = 8080
	tokenDir    = "/var/run/secrets/meshcert"
	tokenFile   = provider.MeshTokenFile
)

// Provider runs one scenario on a shared kind cluster.
type Provider struct {
	clusters *Clusters
	// tuning is passed to install; zero values keep its defaults, but for
	// the CA's replicas: one unless a scenario asks for more.
	tuning provider.Tuning

	cluster *Cluster
	ctx     context.Context
	cancel  context.CancelFunc
	mode    string

	mu         sync.Mutex
	workloads  map[string]*pod
	namespaces map[string]bool
	// placed counts the pods nextNode placed.
	placed int
}

type pod struct {
	spec    provider.WorkloadSpec
	remote  *workload.Remote
	forward context.CancelFunc
}

// NewProvider returns a provider for one scenario on clusters.
func NewProvider(clusters *Clusters) *Provider {
	return &Provider{clusters: clusters, workloads: map[string]*pod{}, namespaces: map[string]bool{}}
}

// Name is "kind".
func (p *Provider) Name() string { return "kind" }

// Tune sets certificate lifetimes, the CA bound and its replicas before
// InstallMesh.
func (p *Provider) Tune(t provider.Tuning) { p.tuning = t }

func (p *Provider) caReplicas() int32 { return int32(max(p.tuning.CAReplicas, 1)) }

// Up takes the profile's cluster, creating it on first use.
func (p *Provider) Up(ctx context.Context, profile string) error {
	cl, err := p.clusters.Get(ctx, profile)
	if err != nil {
		return err
	}
	p.cluster = cl
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return nil
}

// InstallMesh runs kubectl meshcert install and waits for the rollout.
func (p *Provider) InstallMesh(ctx context.Context, mode string) (string, error) {
	if mode == provider.MeshNone {
		return mode, nil
	}
	mode, err := provider.ResolveMesh(ctx, p.cluster.Config, mode)
	if err != nil {
		return "", err
	}
	// The profiles' kubelets resync pods every 5 s (kubeletPatch).
	args := []string{"install", "--mode", mode, "--image", p.clusters.opts.Image, "--replicas", strconv.Itoa(int(p.caReplicas())), "--wait", "--timeout", "3m",
		"--file-mount-propagation", "12s"}
	if p.tuning.WorkloadTTL > 0 {
		args = append(args, "--workload-cert-ttl", p.tuning.WorkloadTTL.String())
	}
	if p.tuning.MaxConcurrentSignings > 0 {
		args = append(args, "--max-concurrent-signings", strconv.Itoa(p.tuning.MaxConcurrentSignings))
	}
	if p.tuning.TokenVerification != "" {
		args = append(args, "--token-verification", p.tuning.TokenVerification)
	}
	if mode == provider.MeshSDS {
		// As on the local provider: namespaces that opt in get the
		// file-mount path beside SDS.
		args = append(args, "--file-mount")
	}
	if _, stderr, code := provider.Plugin(ctx, p, args...); code != 0 {
		return "", fmt.Errorf("kubectl meshcert %s exited %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	p.mode = mode
	return mode, nil
}

// Deploy creates the workload's namespace, service account and pod. The pod
// runs meshcert-workload from the project's image; Status reports it once it
// runs.
func (p *Provider) Deploy(ctx context.Context, spec provider.WorkloadSpec) error {
	client := p.cluster.Client
	if err := provider.PrepareWorkload(ctx, client, &spec, p.mode); err != nil {
		return err
	}
	p.mu.Lock()
	p.namespaces[spec.Namespace] = true
	p.mu.Unlock()
	podObj := workloadPod(p.clusters.opts.Image, spec)
	podObj.Spec.NodeName = p.nextNode()
	if spec.Path != provider.MeshFileMount {
		volume, err := p.tokenVolume(ctx, podObj, spec)
		if err != nil {
			return err
		}
		podObj.Spec.Volumes = append(podObj.Spec.Volumes, volume)
	}
	if _, err := client.CoreV1().Pods(spec.Namespace).Create(ctx, podObj, metav1.CreateOptions{}); err != nil {
		return err
	}
	p.mu.Lock()
	p.workloads[spec.Name] = &pod{spec: spec}
	p.mu.Unlock()
	return nil
}

// nextNode is the node the next workload runs on: the cluster's worker
// nodes in turn, so that consecutive workloads (a client and its server)
// run on different nodes; empty on a one-node cluster, for the scheduler.
func (p *Provider) nextNode() string {
	workers := p.cluster.Workers()
	if len(workers) == 0 {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.placed++
	return workers[(p.placed-1)%len(workers)]
}

// workloadPod is the pod of a workload, without its token volume.
func workloadPod(image string, spec provider.WorkloadSpec) *corev1.Pod {
	args := []string{"--name=" + spec.Name, "--listen=:" + strconv.Itoa(mtlsPort), "--status-listen=:" + strconv.Itoa(controlPort)}
	for _, id := range spec.Allow {
		args = append(args, "--allow="+id)
	}
	container := corev1.Container{
		Name: "workload", Image: image, Command: []string{"/meshcert-workload"},
		Ports: []corev1.ContainerPort{{Name: "mtls", ContainerPort: mtlsPort}, {Name: "control", ContainerPort: controlPort}},
		// Ready once the control endpoint answers, which is when the
		// harness starts talking to it.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: workload.PathStatus, Port: intstr.FromInt32(controlPort)}},
			PeriodSeconds: 1,
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	podSpec := corev1.PodSpec{
		ServiceAccountName:            spec.ServiceAccount,
		AutomountServiceAccountToken:  ptr.To(false),
		SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532)},
		TerminationGracePeriodSeconds: ptr.To[int64](1),
	}
	if spec.Path == provider.MeshFileMount {
		container.Args = append(args, "--cert-dir="+filemount.MountPath)
		podSpec.Containers = []corev1.Container{container}
		filemount.MountSecret(&podSpec)
	} else {
		container.Args = append(args, "--sds-socket="+mesh.SocketPath, "--token-file="+tokenDir+"/"+tokenFile)
		container.VolumeMounts = []corev1.VolumeMount{{Name: "meshcert-token", MountPath: tokenDir, ReadOnly: true}}
		podSpec.Containers = []corev1.Container{container}
		deploy.MountSDSSocket(&podSpec)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: spec.Namespace, Labels: map[string]string{"app.kubernetes.io/name": spec.Name}},
		Spec:       podSpec,
	}
}

// tokenVolume is the SDS workload's token: the kubelet-projected mesh token
// on bound, the service account's legacy Secret token on legacy (the only
// token such a cluster gives a workload), or a bad token from a Secret.
func (p *Provider) tokenVolume(ctx context.Context, podObj *corev1.Pod, spec provider.WorkloadSpec) (corev1.Volume, error) {
	secrets := p.cluster.Client.CoreV1().Secrets(spec.Namespace)
	secretVolume := func(name, key string) corev1.Volume {
		return corev1.Volume{Name: "meshcert-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: name, Items: []corev1.KeyToPath{{Key: key, Path: tokenFile}}, DefaultMode: ptr.To[int32](0o440)}}}
	}
	switch {
	case spec.Token != "":
		minter := &badtoken.Minter{Client: p.cluster.Client, Issuer: kubeadmIssuer, Audience: Audience,
			SigningKey: func(context.Context) ([]byte, error) { return p.cluster.ReadNodeFile("/etc/kubernetes/pki/sa.key") }}
		tok, err := minter.Mint(ctx, podObj, spec.Token)
		if err != nil {
			return corev1.Volume{}, fmt.Errorf("mint the %s token: %w", spec.Token, err)
		}
		name := spec.Name + "-" + spec.Token + "-token"
		if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{tokenFile: tok}}, metav1.CreateOptions{}); err != nil {
			return corev1.Volume{}, err
		}
		return secretVolume(name, tokenFile), nil
	case p.cluster.Profile == provider.ProfileLegacy:
		name := spec.ServiceAccount + "-legacy-token"
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: spec.ServiceAccount}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return corev1.Volume{}, err
		}
		// The tokens controller fills the Secret in.
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			s, err := secrets.Get(ctx, name, metav1.GetOptions{})
			return err == nil && len(s.Data[corev1.ServiceAccountTokenKey]) > 0, nil
		})
		if err != nil {
			return corev1.Volume{}, fmt.Errorf("the tokens controller did not fill in Secret %s/%s: %w", spec.Namespace, name, err)
		}
		return secretVolume(name, corev1.ServiceAccountTokenKey), nil
	}
	return provider.ProjectedTokenVolume("meshcert-token", Audience), nil
}

func (p *Provider) get(name string) (*pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.workloads[name]
	if !ok {
		return nil, fmt.Errorf("no workload %q has been deployed", name)
	}
	return w, nil
}

// remote returns a client of the workload's control endpoint, through a
// port-forward that lasts as long as the scenario, once the pod runs.
func (p *Provider) remote(ctx context.Context, name string) (*workload.Remote, *corev1.Pod, error) {
	w, err := p.get(name)
	if err != nil {
		return nil, nil, err
	}
	current, err := p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	if !podReady(current) {
		return nil, current, p.notRunning(ctx, current)
	}
	p.mu.Lock()
	remote := w.remote
	p.mu.Unlock()
	if remote != nil {
		return remote, current, nil
	}
	forwardCtx, cancel := context.WithCancel(p.ctx)
	addr, err := kubeapi.ForwardToPod(forwardCtx, p.cluster.Config, p.cluster.Client, w.spec.Namespace, name, controlPort)
	if err != nil {
		cancel()
		return nil, current, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.remote != nil { // another caller opened one meanwhile
		cancel()
		return w.remote, current, nil
	}
	w.remote, w.forward = &workload.Remote{Base: "http://" + addr}, cancel
	return w.remote, current, nil
}

// forget drops a workload's port-forward after an error, so that the next
// call opens a new one.
func (p *Provider) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.workloads[name]; ok && w.forward != nil {
		w.forward()
		w.remote, w.forward = nil, nil
	}
}

func podReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// notRunning explains why a pod does not run, from its container states and
// its newest warning event.
func (p *Provider) notRunning(ctx context.Context, current *corev1.Pod) error {
	reasons := []string{"phase " + string(current.Status.Phase)}
	if current.Status.Phase == corev1.PodRunning {
		reasons[0] += ", not ready"
	}
	for _, st := range current.Status.ContainerStatuses {
		if st.State.Waiting != nil {
			reasons = append(reasons, st.State.Waiting.Reason+": "+st.State.Waiting.Message)
		}
	}
	events, err := p.cluster.Client.CoreV1().Events(current.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + current.Name + ",type=Warning"})
	if err == nil && len(events.Items) > 0 {
		sort.Slice(events.Items, func(i, j int) bool { return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp) })
		last := events.Items[len(events.Items)-1]
		reasons = append(reasons, "event "+last.Reason+": "+last.Message)
	}
	return fmt.Errorf("pod %s/%s is not serving yet (%s)", current.Namespace, current.Name, strings.Join(reasons, "; "))
}

// Status reads the workload's own report.
func (p *Provider) Status(ctx context.Context, name string) (workload.Status, error) {
	remote, _, err := p.remote(ctx, name)
	if err != nil {
		return workload.Status{}, err
	}
	st, err := remote.Status(ctx)
	if err != nil {
		p.forget(name)
		return st, err
	}
	return st, nil
}

// peerAddress is the mTLS address of a running workload.
func (p *Provider) peerAddress(ctx context.Context, name string) (string, error) {
	w, err := p.get(name)
	if err != nil {
		return "", err
	}
	current, err := p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if current.Status.PodIP == "" {
		return "", p.notRunning(ctx, current)
	}
	return current.Status.PodIP + ":" + strconv.Itoa(mtlsPort), nil
}

// Call has from call to over mTLS.
func (p *Provider) Call(ctx context.Context, from, to string) (string, error) {
	addr, err := p.peerAddress(ctx, to)
	if err != nil {
		return "", err
	}
	remote, _, err := p.remote(ctx, from)
	if err != nil {
		return "", err
	}
	return remote.Call(ctx, addr)
}

// StartTraffic makes from call to every interval.
func (p *Provider) StartTraffic(ctx context.Context, from, to string, interval time.Duration) error {
	addr, err := p.peerAddress(ctx, to)
	if err != nil {
		return err
	}
	remote, _, err := p.remote(ctx, from)
	if err != nil {
		return err
	}
	return remote.StartTraffic(ctx, addr, interval)
}

// StopTraffic stops from's calls and reports its counts.
func (p *Provider) StopTraffic(ctx context.Context, from string) (workload.Status, error) {
	remote, _, err := p.remote(ctx, from)
	if err != nil {
		return workload.Status{}, err
	}
	return remote.StopTraffic(ctx)
}

// StopCA scales the CA to zero and waits until its pods are gone.
func (p *Provider) StopCA(ctx context.Context) error {
	if err := p.scaleCA(ctx, 0); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := p.cluster.Client.CoreV1().Pods(mesh.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + mesh.CAName})
		return err == nil && len(pods.Items) == 0, nil
	})
}

// StartCA scales the CA back to its replicas and waits until they are ready.
func (p *Provider) StartCA(ctx context.Context) error {
	if err := p.scaleCA(ctx, p.caReplicas()); err != nil {
		return err
	}
	return p.waitCAReplicas(ctx)
}

// waitCAReplicas waits until the CA's replicas are ready pods.
func (p *Provider) waitCAReplicas(ctx context.Context) error {
	selector := "app.kubernetes.io/name=" + mesh.CAName
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := p.cluster.Client.CoreV1().Pods(mesh.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, pod := range pods.Items {
			if pod.DeletionTimestamp == nil && podReady(&pod) {
				ready++
			}
		}
		return ready >= int(p.caReplicas()), nil
	})
}

// RestartAPIServer stops the kube-apiserver container of the control-plane
// node's static pod, as a crash would, and waits until the kubelet has
// started a new one and the API server is ready again.
func (p *Provider) RestartAPIServer(ctx context.Context) error {
	running := func() (string, error) {
		out, err := p.cluster.NodeCommand("", "crictl", "ps", "--name", "kube-apiserver", "--state", "running", "-q")
		return strings.TrimSpace(string(out)), err
	}
	old, err := running()
	if err != nil || old == "" {
		return fmt.Errorf("find the kube-apiserver container (%q): %v", old, err)
	}
	if _, err := p.cluster.NodeCommand("", "crictl", "stop", old); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		current, err := running()
		if err != nil || current == "" || current == old {
			return false, nil
		}
		status := 0
		p.cluster.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == http.StatusOK, nil
	})
}

// KillCALeader kills the container of the replica holding the leader lease
// with SIGKILL (crictl stop with no grace), so that it cannot hand the lease
// over, and returns at once; the kubelet restarts the container. A
// replica's lease identity is its pod's name and a random suffix.
func (p *Provider) KillCALeader(ctx context.Context) (string, error) {
	holder, err := provider.CALeader(ctx, p.cluster.Client)
	if err != nil {
		return "", err
	}
	list, err := p.cluster.Client.CoreV1().Pods(mesh.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + mesh.CAName})
	if err != nil {
		return "", err
	}
	for _, pod := range list.Items {
		if !strings.HasPrefix(holder, pod.Name+"-") {
			continue
		}
		out, err := p.cluster.NodeCommand(pod.Spec.NodeName, "crictl", "ps", "-q", "--state", "running",
			"--label", "io.kubernetes.pod.name="+pod.Name, "--label", "io.kubernetes.pod.namespace="+pod.Namespace)
		if err != nil {
			return "", err
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			return "", fmt.Errorf("the CA leader's pod %s runs no container", pod.Name)
		}
		for _, id := range ids {
			if _, err := p.cluster.NodeCommand(pod.Spec.NodeName, "crictl", "stop", "--timeout", "0", id); err != nil {
				return "", fmt.Errorf("kill the CA leader's container in %s: %w", pod.Name, err)
			}
		}
		return holder, nil
	}
	return "", fmt.Errorf("the leader lease names %q, which is no CA pod's replica", holder)
}

func (p *Provider) scaleCA(ctx context.Context, replicas int32) error {
	deployments := p.cluster.Client.AppsV1().Deployments(mesh.DefaultNamespace)
	scale, err := deployments.GetScale(ctx, mesh.CAName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	scale.Spec.Replicas = replicas
	_, err = deployments.UpdateScale(ctx, mesh.CAName, scale, metav1.UpdateOptions{})
	return err
}

// RestartAgent deletes the node agents' pods, or the one on workload's
// node, and waits until the DaemonSet's new ones are ready.
func (p *Provider) RestartAgent(ctx context.Context, workload string) error {
	node := ""
	if workload != "" {
		pod, err := p.Pod(ctx, workload)
		if err != nil {
			return err
		}
		node = pod.Spec.NodeName
	}
	pods := p.cluster.Client.CoreV1().Pods(mesh.DefaultNamespace)
	selector := "app.kubernetes.io/name=" + mesh.AgentName
	old, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	gone := map[types.UID]bool{}
	for _, pod := range old.Items {
		if node != "" && pod.Spec.NodeName != node {
			continue
		}
		gone[pod.UID] = true
		if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		current, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil || len(current.Items) != len(old.Items) {
			return false, nil
		}
		for _, pod := range current.Items {
			if gone[pod.UID] || !podReady(&pod) {
				return false, nil
			}
		}
		return true, nil
	})
}

// TryTakeOverSocket runs meshcert-workload --try-take-over-socket in a pod
// of namespace as root (uid 0 with the runtime's default capabilities),
// mounting the socket directory as workloads do, and waits for it to end.
func (p *Provider) TryTakeOverSocket(ctx context.Context, namespace string) (string, error) {
	client := p.cluster.Client
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	spec := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr.To(false), TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers: []corev1.Container{{
			Name: "thief", Image: p.clusters.opts.Image, Command: []string{"/meshcert-workload"},
			Args:            []string{"--try-take-over-socket=" + mesh.SocketPath},
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false)},
		}},
	}
	deploy.MountSDSSocket(&spec)
	pods := client.CoreV1().Pods(namespace)
	spec.NodeName = p.nextNode()
	created, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "socket-thief-"}, Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	var phase corev1.PodPhase
	if err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	}); err != nil {
		return "", fmt.Errorf("pod %s/%s did not finish (phase %q): %w", namespace, created.Name, phase, err)
	}
	logs, err := pods.GetLogs(created.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	report := strings.TrimSpace(string(logs))
	if err != nil {
		return "", fmt.Errorf("logs of pod %s/%s: %w", namespace, created.Name, err)
	}
	if phase == corev1.PodFailed {
		return report, fmt.Errorf("pod %s/%s, root with the socket directory mounted as workloads mount it: %s", namespace, created.Name, report)
	}
	return report, nil
}

// ScrapeCA reads the CA's metrics through a port-forward to its Service.
func (p *Provider) ScrapeCA(ctx context.Context) ([]byte, error) {
	forwardCtx, stop := context.WithCancel(ctx)
	defer stop()
	addr, err := kubeapi.ForwardToService(forwardCtx, p.cluster.Config, p.cluster.Client, mesh.DefaultNamespace, mesh.CAName, mesh.CAMonitoringPort)
	if err != nil {
		return nil, err
	}
	return provider.Scrape(ctx, addr)
}

// ComponentConfig acts with the token the kubelet projected into the
// running pod of component, read from the node: the token a compromised
// pod or node would hold.
func (p *Provider) ComponentConfig(ctx context.Context, component, workload string) (*rest.Config, error) {
	node := ""
	if workload != "" {
		pod, err := p.Pod(ctx, workload)
		if err != nil {
			return nil, err
		}
		node = pod.Spec.NodeName
	}
	pods, err := p.cluster.Client.CoreV1().Pods(mesh.DefaultNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": component}).String()})
	if err != nil {
		return nil, err
	}
	for _, pod := range pods.Items {
		if pod.Status.Phase != corev1.PodRunning || (node != "" && pod.Spec.NodeName != node) {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }) {
				continue
			}
			raw, err := p.cluster.NodeCommand(pod.Spec.NodeName, "cat", "/var/lib/kubelet/pods/"+string(pod.UID)+"/volumes/kubernetes.io~projected/"+v.Name+"/token")
			if err != nil {
				return nil, err
			}
			config := rest.AnonymousClientConfig(p.cluster.Config)
			config.BearerToken = strings.TrimSpace(string(raw))
			return config, nil
		}
		return nil, fmt.Errorf("pod %s/%s mounts no service-account token", pod.Namespace, pod.Name)
	}
	return nil, fmt.Errorf("no running pod of %s in %s", component, mesh.DefaultNamespace)
}

// Kubeconfig is the cluster's kubeconfig file.
func (p *Provider) Kubeconfig() string { return p.cluster.Kubeconfig }

// RESTConfig is the cluster's client configuration.
func (p *Provider) RESTConfig() *rest.Config { return p.cluster.Config }

// Pod reads a workload's pod.
func (p *Provider) Pod(ctx context.Context, name string) (*corev1.Pod, error) {
	w, err := p.get(name)
	if err != nil {
		return nil, err
	}
	return p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Get(ctx, name, metav1.GetOptions{})
}

// DeletePod deletes a workload's pod; on kind the kubelet stops it.
func (p *Provider) DeletePod(ctx context.Context, name string) error {
	w, err := p.get(name)
	if err != nil {
		return err
	}
	p.forget(name)
	return p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

// Logs writes the mesh's and the workloads' container logs and events, and
// kind's logs of the cluster, into dir.
func (p *Provider) Logs(dir string) error {
	if p.cluster == nil {
		// Creation failed, and its error names the logs kind collected.
		return errors.New("no cluster came up")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	namespaces := []string{mesh.DefaultNamespace}
	p.mu.Lock()
	for ns := range p.namespaces {
		namespaces = append(namespaces, ns)
	}
	p.mu.Unlock()
	var errs []error
	for _, ns := range namespaces {
		errs = append(errs, p.namespaceLogs(ctx, ns, dir))
	}
	errs = append(errs, p.clusters.CollectLogs(p.cluster.Profile, filepath.Join(dir, "kind")))
	return errors.Join(errs...)
}

func (p *Provider) namespaceLogs(ctx context.Context, ns, dir string) error {
	client := p.cluster.Client.CoreV1()
	pods, err := client.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, item := range pods.Items {
		for _, c := range item.Spec.Containers {
			data, err := client.Pods(ns).GetLogs(item.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(ctx)
			if err != nil {
				data = []byte(err.Error())
			}
			_ = os.WriteFile(filepath.Join(dir, ns+"_"+item.Name+"_"+c.Name+".log"), data, 0o644)
		}
	}
	events, err := client.Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range events.Items {
		fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", e.LastTimestamp.Format(time.RFC3339), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return os.WriteFile(filepath.Join(dir, ns+"_events.txt"), []byte(b.String()), 0o644)
}

// Down uninstalls the mesh and deletes the scenario's namespaces, so that
// the next scenario finds the cluster as it was created.
func (p *Provider) Down() error {
	if p.cluster == nil {
		return nil
	}
	p.mu.Lock()
	for _, w := range p.workloads {
		if w.forward != nil {
			w.forward()
		}
	}
	namespaces := make([]string, 0, len(p.namespaces))
	for ns := range p.namespaces {
		namespaces = append(namespaces, ns)
	}
	p.mu.Unlock()
	p.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	for _, ns := range namespaces {
		if err := p.cluster.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	// uninstall --purge deletes the CA's namespace.
	namespaces = append(namespaces, mesh.DefaultNamespace)
	if p.mode != "" {
		if _, stderr, code := provider.Plugin(ctx, p, "uninstall", "--purge", "-y"); code != 0 {
			errs = append(errs, fmt.Errorf("kubectl meshcert uninstall --purge exited %d: %s", code, strings.TrimSpace(stderr)))
		}
	}
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, ns := range namespaces {
			if _, err := p.cluster.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("namespaces %s were not deleted within 3 minutes", strings.Join(namespaces, ", ")))
	}
	return errors.Join(errs...)
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Tuner    = (*Provider)(nil)
)
