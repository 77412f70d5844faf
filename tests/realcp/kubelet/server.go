package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	criremotecommand "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// newServer serves the kubelet API paths the API server proxies to: exec, containerLogs and
// portForward, over TLS with a throwaway certificate (the API server does not verify kubelets
// unless told to).
func newServer(rt *runtime, port int) (*http.Server, error) {
	certificate, err := selfSigned()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", rt.serveExec)
	mux.HandleFunc("/containerLogs/{namespace}/{pod}/{container}", rt.serveLogs)
	mux.HandleFunc("/portForward/{namespace}/{pod}", rt.servePortForward)
	return &http.Server{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Handler:   mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{certificate}},
	}, nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "pgk8s-kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// runningContainer finds a pod's running container, or writes the error a kubelet returns.
func (r *runtime) runningContainer(w http.ResponseWriter, namespace, name, container string) *podRuntime {
	pod := r.find(namespace, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return nil
	}
	if container == "" {
		return pod
	}
	state := pod.containerState(container)
	if state == nil {
		http.Error(w, fmt.Sprintf("container %s is not valid for pod %s", container, name), http.StatusNotFound)
		return nil
	}
	pod.mu.Lock()
	running := state.running
	pod.mu.Unlock()
	if !running {
		http.Error(w, fmt.Sprintf("container not found (%q)", container), http.StatusNotFound)
		return nil
	}
	return pod
}

func (r *runtime) serveExec(w http.ResponseWriter, req *http.Request) {
	namespace, name, container := req.PathValue("namespace"), req.PathValue("pod"), req.PathValue("container")
	pod := r.runningContainer(w, namespace, name, container)
	if pod == nil {
		return
	}
	options, err := criremotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	command := req.URL.Query()["command"]
	criremotecommand.ServeExec(w, req, &executor{pod: pod}, name, pod.uid, container, command, options,
		4*time.Hour, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
}

type executor struct{ pod *podRuntime }

// ExecInContainer runs the command inside the pod's namespaces and root, as the container user
// with the container's environment; stdin and stdout stream as they arrive. There is no TTY.
func (e *executor) ExecInContainer(ctx context.Context, _ string, _ types.UID, container string, command []string,
	in io.Reader, out, stderr io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(command) == 0 {
		return errors.New("no command given")
	}
	spec := e.pod.pod.Spec.Containers[0]
	for _, candidate := range e.pod.pod.Spec.Containers {
		if candidate.Name == container {
			spec = candidate
		}
	}
	env, err := e.pod.containerEnv(spec)
	if err != nil {
		return err
	}
	argv, err := e.pod.enter(command)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	if out != nil {
		cmd.Stdout = out
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	var stdin io.WriteCloser
	if in != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if stdin != nil {
		// Not waited for: kubectl may keep its stdin open after the command has exited.
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// serveLogs returns a container's output: the current run, or the previous one with
// ?previous=true; tailLines, limitBytes and follow are honoured.
func (r *runtime) serveLogs(w http.ResponseWriter, req *http.Request) {
	namespace, name, container := req.PathValue("namespace"), req.PathValue("pod"), req.PathValue("container")
	pod := r.find(namespace, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", namespace, name), http.StatusNotFound)
		return
	}
	state := pod.containerState(container)
	if state == nil {
		http.Error(w, fmt.Sprintf("container %s is not valid for pod %s", container, name), http.StatusBadRequest)
		return
	}
	query := req.URL.Query()
	pod.mu.Lock()
	restarts, started, running := state.restarts, state.id != "", state.running
	pod.mu.Unlock()
	run := restarts
	if query.Get("previous") == "true" {
		if restarts == 0 || (!running && restarts == 1 && state.lastTerminated == nil) {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, name), http.StatusBadRequest)
			return
		}
		run = restarts - 1
		if !running {
			run = restarts - 1
		}
	} else if !started {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, name,
			strings.ToLower(strings.TrimSpace(state.waitingReason))), http.StatusBadRequest)
		return
	} else if !running && restarts > 0 {
		run = restarts - 1
	}
	content, err := os.ReadFile(pod.logPath(container, run))
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if tail := query.Get("tailLines"); tail != "" {
		if count, err := strconv.Atoi(tail); err == nil {
			lines := strings.SplitAfter(string(content), "\n")
			if len(lines) > 0 && lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			if count < len(lines) {
				lines = lines[len(lines)-count:]
			}
			content = []byte(strings.Join(lines, ""))
		}
	}
	if limit := query.Get("limitBytes"); limit != "" {
		if count, err := strconv.Atoi(limit); err == nil && count < len(content) {
			content = content[:count]
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(content)
	if query.Get("follow") != "true" || !running {
		return
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	file, err := os.Open(pod.logPath(container, run))
	if err != nil {
		return
	}
	defer file.Close()
	offset, _ := file.Seek(0, io.SeekEnd)
	_ = offset
	reader := bufio.NewReader(file)
	for {
		chunk, err := reader.ReadBytes('\n')
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err == nil {
			continue
		}
		pod.mu.Lock()
		stillRunning := state.running && state.restarts == run
		pod.mu.Unlock()
		if !stillRunning {
			return
		}
		select {
		case <-req.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *runtime) servePortForward(w http.ResponseWriter, req *http.Request) {
	namespace, name := req.PathValue("namespace"), req.PathValue("pod")
	pod := r.runningContainer(w, namespace, name, "")
	if pod == nil {
		return
	}
	options, err := portforward.NewV4Options(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, req, &forwarder{pod: pod}, name, pod.uid, options,
		4*time.Hour, 30*time.Second, portforward.SupportedProtocols)
}

type forwarder struct{ pod *podRuntime }

// PortForward connects the stream to the port on the pod's own loopback: this binary re-runs
// itself as a relay inside the pod's network namespace, so nothing on the host's network is
// ever dialled.
func (f *forwarder) PortForward(ctx context.Context, _ string, _ types.UID, port int32, stream io.ReadWriteCloser) error {
	f.pod.mu.Lock()
	pid := f.pod.sandboxPID
	f.pod.mu.Unlock()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", "--", self, "relay", strconv.Itoa(int(port)))
	cmd.Stdin, cmd.Stdout = stream, stream
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside namespace of pod %s: %s", port, f.pod.name, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// relay copies stdin to 127.0.0.1:port and the connection back to stdout (the port-forward
// helper, run inside a pod's network namespace).
func relay(port string) {
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tcp := conn.(*net.TCPConn)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, tcp)
		close(done)
	}()
	_, _ = io.Copy(tcp, os.Stdin)
	_ = tcp.CloseWrite()
	<-done
}
