// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// projectToken writes the pod's service-account token to file and keeps it
// fresh at 80 % of its life, as the kubelet does. A cluster without
// TokenRequest gets the legacy Secret token, as kubelets before 1.12
// mounted it into every pod.
func (p *Provider) projectToken(ctx context.Context, pod *corev1.Pod, file string) error {
	sas := p.cluster.Client.CoreV1().ServiceAccounts(pod.Namespace)
	mint := func(ctx context.Context) (string, time.Duration, error) {
		tr, err := sas.CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{Audience}, ExpirationSeconds: ptr.To[int64](provider.TokenExpirySeconds),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			return "", 0, err
		}
		return tr.Status.Token, time.Until(tr.Status.ExpirationTimestamp.Time), nil
	}
	tok, life, err := mint(ctx)
	if apierrors.IsNotFound(err) {
		legacy, err := p.legacyToken(ctx, pod)
		if err != nil {
			return fmt.Errorf("no projected token (TokenRequest answered 404) and no legacy token: %w", err)
		}
		return WriteAtomically(file, []byte(legacy))
	}
	if err != nil {
		return fmt.Errorf("project the service-account token: %w", err)
	}
	if err := WriteAtomically(file, []byte(tok)); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(life * 8 / 10):
			}
			next, nextLife, err := mint(p.ctx)
			if err != nil {
				p.log.Warn("token refresh failed", "pod", pod.Name, "error", err)
				life = 10 * time.Second
				continue
			}
			life = nextLife
			_ = WriteAtomically(file, []byte(next))
		}
	}()
	return nil
}

func (p *Provider) legacyToken(ctx context.Context, pod *corev1.Pod) (string, error) {
	secrets := p.cluster.Client.CoreV1().Secrets(pod.Namespace)
	name := pod.Spec.ServiceAccountName + "-token"
	_, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: pod.Spec.ServiceAccountName}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	var tok string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		tok = string(s.Data[corev1.ServiceAccountTokenKey])
		return tok != "", nil
	})
	return tok, err
}

// mountSecret materialises a Secret into dir with the kubelet's atomic
// writer layout and keeps it up to date. A missing Secret leaves the last
// content in place, as the kubelet does.
func (p *Provider) mountSecret(namespace, name, dir string) {
	go func() {
		last, generation := "", 0
		for p.ctx.Err() == nil {
			s, err := p.cluster.Client.CoreV1().Secrets(namespace).Get(p.ctx, name, metav1.GetOptions{})
			if err == nil && s.ResourceVersion != last {
				generation++
				if err := atomicWrite(dir, generation, s.Data); err != nil {
					p.log.Warn("secret volume update failed", "secret", name, "error", err)
				} else {
					last = s.ResourceVersion
				}
			}
			select {
			case <-p.ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// projectConfigMap keeps one key of a ConfigMap in file, as a ConfigMap
// volume does.
func (p *Provider) projectConfigMap(namespace, name, key, file string) {
	go func() {
		last := ""
		for p.ctx.Err() == nil {
			cm, err := p.cluster.Client.CoreV1().ConfigMaps(namespace).Get(p.ctx, name, metav1.GetOptions{})
			if err == nil && cm.ResourceVersion != last {
				if err := WriteAtomically(file, []byte(cm.Data[key])); err == nil {
					last = cm.ResourceVersion
				}
			}
			select {
			case <-p.ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// atomicWrite writes data into a fresh timestamped directory, then swaps
// the ..data symlink to it in one rename, and links each key into ..data.
func atomicWrite(dir string, generation int, data map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ts := "..generation_" + strconv.Itoa(generation) + "_" + strings.ReplaceAll(time.Now().UTC().Format("2006_01_02_15_04_05.000000000"), ".", "_")
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		return err
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, ts, k), v, 0o644); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for k := range data {
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				return err
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// WriteAtomically writes data beside file and renames it there, so that a
// reader never sees the file half written.
func WriteAtomically(file string, data []byte) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
